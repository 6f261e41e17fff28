"""Which Nova Pro model id a region should call, and the regions that id routes to.

Outside a few US regions, Bedrock refuses Nova Pro by its bare id on demand
(`ValidationException: Invocation of model ID amazon.nova-pro-v1:0 with on-demand throughput
isn't supported`): it wants a cross-region (system-defined) inference profile, named after the
model with a geography prefix (`us.`, `eu.`, `apac.`). A request to a profile is served in any
of its destination regions, so an IAM policy must allow the foundation model in every one of
them, plus the profile itself in the source region.

The table below is the geography of each source region and the destination regions of the
Nova Pro profiles as AWS documents them ("Supported Regions and models for inference
profiles"). AWS adds regions over time; `python -m gateway bedrock setup` asks Bedrock
(`GetInferenceProfile`) for the profile's real destinations and prints the policy from that
answer, falling back to this table only when the call is not allowed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

BASE_MODEL_ID = "amazon.nova-pro-v1:0"


@dataclass(frozen=True)
class Geography:
    prefix: str  # the inference profile id prefix: "us", "eu", "apac"
    sources: tuple[str, ...]  # regions that may call the profile
    destinations: tuple[str, ...]  # regions the profile may route a request to


GEOGRAPHIES: dict[str, Geography] = {
    "us": Geography("us", ("us-east-1", "us-east-2", "us-west-2"),
                    ("us-east-1", "us-east-2", "us-west-2")),
    "eu": Geography("eu", ("eu-central-1", "eu-north-1", "eu-west-1", "eu-west-3"),
                    ("eu-central-1", "eu-north-1", "eu-west-1", "eu-west-3")),
    "apac": Geography("apac", ("ap-northeast-1", "ap-northeast-2", "ap-south-1", "ap-southeast-1",
                               "ap-southeast-2"),
                      ("ap-northeast-1", "ap-northeast-2", "ap-south-1", "ap-southeast-1",
                       "ap-southeast-2")),
}


def geography_of(region: str) -> Geography:
    """The geography whose profile a region calls; ValueError for a region without one."""
    for geography in GEOGRAPHIES.values():
        if region in geography.sources:
            return geography
    known = ", ".join(r for g in GEOGRAPHIES.values() for r in g.sources)
    raise ValueError(
        f"no Nova Pro inference profile is known for region {region!r} (known: {known}); "
        f"pass --model-id with a model or inference profile id that region serves")


def default_model_id(region: str) -> str:
    """The Nova Pro inference profile id for `region`, e.g. ap-northeast-2 -> apac.amazon.nova-pro-v1:0."""
    return f"{geography_of(region).prefix}.{BASE_MODEL_ID}"


def is_profile_id(model_id: str) -> bool:
    return model_id.split(".", 1)[0] in GEOGRAPHIES and model_id.count(".") >= 2


def base_model_of(model_id: str) -> str:
    """amazon.nova-pro-v1:0 for both apac.amazon.nova-pro-v1:0 and amazon.nova-pro-v1:0."""
    return model_id.split(".", 1)[1] if is_profile_id(model_id) else model_id


def routed_regions(region: str, model_id: str) -> tuple[str, ...]:
    """Regions a call to `model_id` from `region` may be served in (the table's view)."""
    if not is_profile_id(model_id):
        return (region,)
    return GEOGRAPHIES[model_id.split(".", 1)[0]].destinations


def model_resources(region: str, model_id: str, account: str = "123456789012",
                    destinations: tuple[str, ...] | None = None) -> list[str]:
    """IAM resources `bedrock:InvokeModel` needs for `model_id` called from `region`: the profile
    in the source region and the foundation model in every destination region."""
    base = base_model_of(model_id)
    regions = destinations or routed_regions(region, model_id)
    resources = [f"arn:aws:bedrock:{r}::foundation-model/{base}" for r in sorted(set(regions))]
    if is_profile_id(model_id):
        resources.insert(0, f"arn:aws:bedrock:{region}:{account}:inference-profile/{model_id}")
    return resources


def gateway_policy(region: str, model_id: str, account: str = "123456789012", flow_id: str = "*",
                   alias_id: str = "*", destinations: tuple[str, ...] | None = None) -> dict:
    """The IAM policy of the identity the gateway runs as (both vectorizer paths)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "VectorizerFlow", "Effect": "Allow", "Action": "bedrock:InvokeFlow",
             "Resource": f"arn:aws:bedrock:{region}:{account}:flow/{flow_id}/alias/{alias_id}"},
            {"Sid": "VectorizerConverse", "Effect": "Allow", "Action": "bedrock:InvokeModel",
             "Resource": model_resources(region, model_id, account, destinations)},
        ],
    }


def flow_role_policy(region: str, model_id: str, account: str = "123456789012",
                     prompt_id: str = "*", destinations: tuple[str, ...] | None = None) -> dict:
    """The IAM policy of the flow's execution role: the model (everywhere the profile routes) and
    the prompt it renders."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "FlowModel", "Effect": "Allow", "Action": "bedrock:InvokeModel",
             "Resource": model_resources(region, model_id, account, destinations)},
            {"Sid": "FlowPrompt", "Effect": "Allow", "Action": ["bedrock:GetPrompt", "bedrock:RenderPrompt"],
             "Resource": f"arn:aws:bedrock:{region}:{account}:prompt/{prompt_id}*"},
        ],
    }


FLOW_ROLE_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "bedrock.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
}


def render(policy: dict) -> str:
    return json.dumps(policy, indent=2)
