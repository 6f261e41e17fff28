"""Create, check and remove the Bedrock resources of the bedrock-flow vectorizer with real
`bedrock-agent` calls, by name and idempotently:

    prompt  "customer-vectorizer"  (Prompt management; text = prompt.render_flow_prompt(), the
                                    schema's prompt; Nova Pro through the region's profile)
      -> a numbered prompt version
    flow    "customer-vectorizer"  FlowInputNode.document -> prompt node .text,
                                    prompt node .modelCompletion -> FlowOutputNode.document
      -> prepared -> a numbered flow version
    alias   "live"                 routed to that flow version

`setup` compares what exists with what the schema generates now and only changes what
differs: a second run against an unchanged schema makes no write call. A schema change
updates the prompt's draft, makes a new prompt version, points the flow at it, prepares it,
makes a new flow version and moves the alias, so the gateway's config (flow id + alias id)
never changes. `status` reads what the alias really serves (alias -> flow version -> prompt
node -> prompt version) and compares it with the schema's prompt. `teardown` removes the
alias, the flow's versions, the flow and the prompt.

No credentials are taken or written: boto3 finds them in the standard AWS chain.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.exceptions as bce
from botocore.config import Config

from gateway.bedrock import profiles
from gateway.vectorizers import prompt as prompt_text
from gateway.vectorizers.bedrock import DEFAULT_MAX_TOKENS, FlowConfig, classify, new_session

log = logging.getLogger(__name__)

PROMPT_NAME = "customer-vectorizer"
FLOW_NAME = "customer-vectorizer"
ALIAS_NAME = "live"
VARIANT_NAME = "default"
INPUT_NODE = "FlowInputNode"
INPUT_OUTPUT = "document"
PROMPT_NODE = "VectorizerPrompt"
OUTPUT_NODE = "FlowOutputNode"
DESCRIPTION = "Customer vectorizer of the recommender gateway (made by `python -m gateway bedrock setup`)"
PREPARE_TIMEOUT_S = 120.0


class ControlError(Exception):
    """A control-plane step failed; the message says which call, why and what to do."""


@dataclass
class Step:
    resource: str  # prompt, prompt-version, flow, flow-version, alias, config
    action: str  # created, updated, unchanged, prepared, moved, deleted, absent, written
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.resource:<15}{self.action:<10}{self.detail}"


@dataclass(frozen=True)
class Desired:
    """What the schema and the flags ask for."""

    region: str
    model_id: str
    role_arn: str | None = None
    prompt_name: str = PROMPT_NAME
    flow_name: str = FLOW_NAME
    alias_name: str = ALIAS_NAME

    @property
    def text(self) -> str:
        return prompt_text.render_flow_prompt()

    def prompt_fields(self) -> dict[str, Any]:
        return {
            "name": self.prompt_name,
            "description": DESCRIPTION,
            "defaultVariant": VARIANT_NAME,
            "variants": [{
                "name": VARIANT_NAME,
                "templateType": "TEXT",
                "templateConfiguration": {"text": {
                    "text": self.text,
                    "inputVariables": [{"name": prompt_text.FLOW_INPUT_VARIABLE}],
                }},
                "modelId": self.model_id,
                "inferenceConfiguration": {"text": {"temperature": 0.0, "topP": 1.0,
                                                    "maxTokens": DEFAULT_MAX_TOKENS}},
            }],
        }

    def flow_definition(self, prompt_version_arn: str) -> dict[str, Any]:
        variable = prompt_text.FLOW_INPUT_VARIABLE
        return {
            "nodes": [
                {"name": INPUT_NODE, "type": "Input", "configuration": {"input": {}},
                 "outputs": [{"name": INPUT_OUTPUT, "type": "String"}]},
                {"name": PROMPT_NODE, "type": "Prompt",
                 "configuration": {"prompt": {"sourceConfiguration": {"resource": {"promptArn": prompt_version_arn}}}},
                 "inputs": [{"name": variable, "type": "String", "expression": "$.data"}],
                 "outputs": [{"name": "modelCompletion", "type": "String"}]},
                {"name": OUTPUT_NODE, "type": "Output", "configuration": {"output": {}},
                 "inputs": [{"name": INPUT_OUTPUT, "type": "String", "expression": "$.data"}]},
            ],
            "connections": [
                {"name": "InputToPrompt", "source": INPUT_NODE, "target": PROMPT_NODE, "type": "Data",
                 "configuration": {"data": {"sourceOutput": INPUT_OUTPUT, "targetInput": variable}}},
                {"name": "PromptToOutput", "source": PROMPT_NODE, "target": OUTPUT_NODE, "type": "Data",
                 "configuration": {"data": {"sourceOutput": "modelCompletion", "targetInput": INPUT_OUTPUT}}},
            ],
        }


def _variant_signature(fields: dict[str, Any]) -> tuple:
    """What makes two prompts answer the same: text, variables, model, inference settings
    (numbers compared as numbers: the service may echo 0 as 0.0)."""
    variants = fields.get("variants") or [{}]
    variant = next((v for v in variants if v.get("name") == fields.get("defaultVariant")), variants[0])
    text = variant.get("templateConfiguration", {}).get("text", {})
    inference = variant.get("inferenceConfiguration", {}).get("text", {})
    return (
        text.get("text"),
        tuple(sorted(v.get("name", "") for v in text.get("inputVariables", []))),
        variant.get("modelId"),
        float(inference.get("temperature", -1)), float(inference.get("topP", -1)), int(inference.get("maxTokens", -1)),
    )


def _flow_signature(definition: dict[str, Any] | None) -> str:
    """What makes two flow definitions behave the same, from the fields setup sets only, so a
    default the service adds when it echoes a definition back is not a difference."""
    definition = definition or {}
    nodes = []
    for node in definition.get("nodes", []):
        source = node.get("configuration", {}).get("prompt", {}).get("sourceConfiguration", {})
        nodes.append([
            node.get("name"), node.get("type"), source.get("resource", {}).get("promptArn"),
            sorted([i.get("name"), i.get("type"), i.get("expression")] for i in node.get("inputs", [])),
            sorted([o.get("name"), o.get("type")] for o in node.get("outputs", [])),
        ])
    connections = []
    for connection in definition.get("connections", []):
        data = connection.get("configuration", {}).get("data", {})
        connections.append([connection.get("name"), connection.get("source"), connection.get("target"),
                            connection.get("type"), data.get("sourceOutput"), data.get("targetInput")])
    return json.dumps([sorted(nodes, key=str), sorted(connections, key=str)])


def _numbered(versions: list[str]) -> list[str]:
    return sorted((v for v in versions if v.isdigit()), key=int)


def account_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 and parts[4] else "123456789012"


def prompt_of_flow(definition: dict[str, Any]) -> tuple[str, str | None]:
    """(prompt id, version) the flow's prompt node renders; ControlError when there is none."""
    for node in definition.get("nodes", []):
        if node.get("type") == "Prompt":
            arn = node.get("configuration", {}).get("prompt", {}).get("sourceConfiguration", {}) \
                .get("resource", {}).get("promptArn", "")
            match = re.match(r"^arn:[^:]+:bedrock:[^:]*:\d*:prompt/([A-Za-z0-9]+)(?::(\w+))?$", arn)
            if match:
                return match.group(1), match.group(2)
    raise ControlError("the flow has no prompt node using a prompt from Prompt management")


class BedrockControl:
    """The bedrock-agent (and bedrock, for inference profiles) clients of one region."""

    def __init__(self, region: str, endpoint_url: str | None = None, timeout_s: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep):
        config = Config(region_name=region, connect_timeout=timeout_s, read_timeout=timeout_s,
                        retries={"mode": "standard", "total_max_attempts": 4})
        self._session = new_session()
        self._config, self._endpoint_url = config, endpoint_url
        self.region = region
        self.agent = self._session.client("bedrock-agent", region_name=region, endpoint_url=endpoint_url,
                                          config=config)
        self._bedrock: Any = None
        self._sleep = sleep

    @property
    def bedrock(self) -> Any:
        """The `bedrock` client (inference profiles), made on first use."""
        if self._bedrock is None:
            self._bedrock = self._session.client("bedrock", region_name=self.region,
                                                 endpoint_url=self._endpoint_url, config=self._config)
        return self._bedrock

    # ------------------------------------------------------------------ calls

    def _call(self, client: Any, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return getattr(client, operation)(**kwargs)
        except (bce.BotoCoreError, bce.ClientError) as exc:
            error = classify(exc, operation, region=self.region)
            if error.reason == "access_denied":
                action = "bedrock:" + "".join(part.title() for part in operation.split("_"))
                remedy = (f"the identity running this command needs {action} in {self.region} "
                          "(docs/bedrock.md, Permissions: whoever runs setup)")
            elif error.reason in ("no_credentials", "bad_credentials"):
                remedy = error.remedy
            else:  # AWS's own message says what was wrong with the request
                remedy = ""
            raise ControlError(f"{error}; {remedy}" if remedy else str(error)) from exc

    def _pages(self, operation: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            page = self._call(self.agent, operation, **kwargs, **({"nextToken": token} if token else {}))
            yield from page.get(key, [])
            token = page.get("nextToken")
            if not token:
                return

    def _missing(self, exc: ControlError) -> bool:
        return isinstance(exc.__cause__, bce.ClientError) and \
            exc.__cause__.response.get("Error", {}).get("Code") == "ResourceNotFoundException"

    def find_prompt(self, name: str) -> dict[str, Any] | None:
        return next((p for p in self._pages("list_prompts", "promptSummaries") if p["name"] == name), None)

    def find_flow(self, name: str) -> dict[str, Any] | None:
        return next((f for f in self._pages("list_flows", "flowSummaries") if f["name"] == name), None)

    def prompt_versions(self, prompt_id: str) -> list[str]:
        return _numbered([p["version"] for p in self._pages("list_prompts", "promptSummaries",
                                                             promptIdentifier=prompt_id)])

    def flow_versions(self, flow_id: str) -> list[str]:
        return _numbered([v["version"] for v in self._pages("list_flow_versions", "flowVersionSummaries",
                                                            flowIdentifier=flow_id)])

    def aliases(self, flow_id: str) -> list[dict[str, Any]]:
        return list(self._pages("list_flow_aliases", "flowAliasSummaries", flowIdentifier=flow_id))

    def profile_destinations(self, model_id: str) -> tuple[tuple[str, ...] | None, str]:
        """Regions the inference profile routes to, as Bedrock says (None when it cannot be asked)."""
        if not profiles.is_profile_id(model_id):
            return (self.region,), "a model id, not a profile: served in this region only"
        try:
            answer = self._call(self.bedrock, "get_inference_profile", inferenceProfileIdentifier=model_id)
        except ControlError as exc:
            return None, f"GetInferenceProfile failed ({exc}); the policy uses the documented regions"
        regions = tuple(sorted({m["modelArn"].split(":")[3] for m in answer.get("models", []) if m.get("modelArn")}))
        return regions, "destination regions from GetInferenceProfile"

    # ------------------------------------------------------------------ setup

    def setup(self, desired: Desired) -> tuple[list[Step], dict[str, Any]]:
        """Make the resources match `desired`; (steps, the gateway's flow config)."""
        steps: list[Step] = []
        prompt_id, prompt_arn = self._ensure_prompt(desired, steps)
        prompt_version, prompt_version_arn = self._ensure_prompt_version(desired, prompt_id, prompt_arn, steps)
        flow_id = self._ensure_flow(desired, prompt_version_arn, steps)
        flow_version = self._ensure_flow_version(desired, flow_id, prompt_version_arn, steps)
        alias_id = self._ensure_alias(desired, flow_id, flow_version, steps)
        config = {
            "region": desired.region, "flowIdentifier": flow_id, "flowAliasIdentifier": alias_id,
            "flowVersion": flow_version, "promptIdentifier": prompt_id, "promptVersion": prompt_version,
            "modelId": desired.model_id, "flowName": desired.flow_name, "promptName": desired.prompt_name,
            "aliasName": desired.alias_name,
        }
        return steps, config

    def _ensure_prompt(self, desired: Desired, steps: list[Step]) -> tuple[str, str]:
        found = self.find_prompt(desired.prompt_name)
        if found is None:
            created = self._call(self.agent, "create_prompt", **desired.prompt_fields())
            steps.append(Step("prompt", "created", f"{created['id']} model {desired.model_id}"))
            return created["id"], created["arn"]
        draft = self._call(self.agent, "get_prompt", promptIdentifier=found["id"])
        if _variant_signature(draft) == _variant_signature(desired.prompt_fields()):
            steps.append(Step("prompt", "unchanged", found["id"]))
        else:
            self._call(self.agent, "update_prompt", promptIdentifier=found["id"], **desired.prompt_fields())
            steps.append(Step("prompt", "updated", f"{found['id']} draft now the schema's prompt"))
        return found["id"], found["arn"]

    def _ensure_prompt_version(self, desired: Desired, prompt_id: str, prompt_arn: str,
                               steps: list[Step]) -> tuple[str, str]:
        versions = self.prompt_versions(prompt_id)
        if versions:
            latest = self._call(self.agent, "get_prompt", promptIdentifier=prompt_id, promptVersion=versions[-1])
            if _variant_signature(latest) == _variant_signature(desired.prompt_fields()):
                steps.append(Step("prompt-version", "unchanged", versions[-1]))
                return versions[-1], latest["arn"]
        created = self._call(self.agent, "create_prompt_version", promptIdentifier=prompt_id)
        steps.append(Step("prompt-version", "created", created["version"]))
        return created["version"], created.get("arn") or f"{prompt_arn}:{created['version']}"

    def _ensure_flow(self, desired: Desired, prompt_version_arn: str, steps: list[Step]) -> str:
        definition = desired.flow_definition(prompt_version_arn)
        found = self.find_flow(desired.flow_name)
        if found is None:
            if not desired.role_arn:
                raise ControlError(
                    "creating the flow needs --role-arn (env BEDROCK_FLOW_ROLE_ARN): the IAM role the flow "
                    "runs as, trusted by bedrock.amazonaws.com; `python -m gateway bedrock policy` prints "
                    "its trust and permission policies (docs/bedrock.md)")
            created = self._call(self.agent, "create_flow", name=desired.flow_name, description=DESCRIPTION,
                                 executionRoleArn=desired.role_arn, definition=definition)
            steps.append(Step("flow", "created", created["id"]))
            flow_id, status = created["id"], created["status"]
        else:
            flow = self._call(self.agent, "get_flow", flowIdentifier=found["id"])
            role = desired.role_arn or flow["executionRoleArn"]
            flow_id, status = found["id"], flow["status"]
            if _flow_signature(flow.get("definition")) == _flow_signature(definition) and \
                    flow["executionRoleArn"] == role:
                steps.append(Step("flow", "unchanged", flow_id))
            else:
                self._call(self.agent, "update_flow", flowIdentifier=flow_id, name=desired.flow_name,
                           description=DESCRIPTION, executionRoleArn=role, definition=definition)
                steps.append(Step("flow", "updated", f"{flow_id} now renders {prompt_version_arn.rsplit('/', 1)[-1]}"))
                status = "NotPrepared"
        if status != "Prepared":
            self._prepare(flow_id)
            steps.append(Step("flow", "prepared", flow_id))
        return flow_id

    def _prepare(self, flow_id: str) -> None:
        self._call(self.agent, "prepare_flow", flowIdentifier=flow_id)
        waited, pause = 0.0, 0.1
        while True:
            flow = self._call(self.agent, "get_flow", flowIdentifier=flow_id)
            if flow["status"] == "Prepared":
                return
            if flow["status"] == "Failed":
                problems = "; ".join(v.get("message", "") for v in flow.get("validations") or []) or "no detail"
                raise ControlError(f"PrepareFlow of flow {flow_id} failed: {problems}")
            if waited >= PREPARE_TIMEOUT_S:
                raise ControlError(f"flow {flow_id} still {flow['status']} after {PREPARE_TIMEOUT_S:.0f} s")
            self._sleep(pause)
            waited += pause
            pause = min(2.0, pause * 2)

    def _ensure_flow_version(self, desired: Desired, flow_id: str, prompt_version_arn: str,
                             steps: list[Step]) -> str:
        versions = self.flow_versions(flow_id)
        if versions:
            latest = self._call(self.agent, "get_flow_version", flowIdentifier=flow_id, flowVersion=versions[-1])
            draft = self._call(self.agent, "get_flow", flowIdentifier=flow_id)
            if (_flow_signature(latest.get("definition")) == _flow_signature(desired.flow_definition(prompt_version_arn))
                    and latest["executionRoleArn"] == draft["executionRoleArn"]):
                steps.append(Step("flow-version", "unchanged", versions[-1]))
                return versions[-1]
        created = self._call(self.agent, "create_flow_version", flowIdentifier=flow_id)
        steps.append(Step("flow-version", "created", created["version"]))
        return created["version"]

    def _ensure_alias(self, desired: Desired, flow_id: str, flow_version: str, steps: list[Step]) -> str:
        routing = [{"flowVersion": flow_version}]
        alias = next((a for a in self.aliases(flow_id) if a["name"] == desired.alias_name), None)
        if alias is None:
            created = self._call(self.agent, "create_flow_alias", flowIdentifier=flow_id, name=desired.alias_name,
                                 description=DESCRIPTION, routingConfiguration=routing)
            steps.append(Step("alias", "created", f"{created['id']} -> version {flow_version}"))
            return created["id"]
        current = [r.get("flowVersion") for r in alias.get("routingConfiguration", [])]
        if current == [flow_version]:
            steps.append(Step("alias", "unchanged", f"{alias['id']} -> version {flow_version}"))
        else:
            self._call(self.agent, "update_flow_alias", flowIdentifier=flow_id, aliasIdentifier=alias["id"],
                       name=desired.alias_name, description=DESCRIPTION, routingConfiguration=routing)
            steps.append(Step("alias", "moved", f"{alias['id']} -> version {flow_version} (was {','.join(current)})"))
        return alias["id"]

    # ------------------------------------------------------------------ status

    def status(self, flow_id: str, alias_id: str, desired: Desired) -> Status:
        """What the alias serves compared with what the schema generates now."""
        alias = self._call(self.agent, "get_flow_alias", flowIdentifier=flow_id, aliasIdentifier=alias_id)
        version = alias["routingConfiguration"][0]["flowVersion"]
        flow = (self._call(self.agent, "get_flow", flowIdentifier=flow_id) if version == "DRAFT" else
                self._call(self.agent, "get_flow_version", flowIdentifier=flow_id, flowVersion=version))
        prompt_id, prompt_version = prompt_of_flow(flow.get("definition") or {})
        deployed = self._call(self.agent, "get_prompt", promptIdentifier=prompt_id,
                              **({"promptVersion": prompt_version} if prompt_version else {}))
        have, want = _variant_signature(deployed), _variant_signature(desired.prompt_fields())
        problems = []
        if have[0] != want[0]:
            diff = list(difflib.unified_diff((have[0] or "").splitlines(), want[0].splitlines(),
                                             "deployed", "schema", lineterm="", n=0))
            added = sum(1 for d in diff if d.startswith("+") and not d.startswith("+++"))
            removed = sum(1 for d in diff if d.startswith("-") and not d.startswith("---"))
            problems.append(f"prompt text differs from the schema's (+{added} -{removed} lines)")
        else:
            diff = []
        if have[1] != want[1]:
            problems.append(f"prompt variables {list(have[1])}, the flow sends {list(want[1])}")
        if have[2] != want[2]:
            problems.append(f"model {have[2]}, expected {want[2]}")
        if have[3:] != want[3:]:
            problems.append(f"inference settings {have[3:]}, expected {want[3:]}")
        return Status(flow_id=flow_id, alias_id=alias_id, flow_version=version, prompt_id=prompt_id,
                      prompt_version=prompt_version or "DRAFT", model_id=have[2] or "", problems=problems, diff=diff,
                      flow_status=flow.get("status", ""))

    # ------------------------------------------------------------------ teardown

    def teardown(self, *, flow_name: str = FLOW_NAME, prompt_name: str = PROMPT_NAME,
                 flow_id: str | None = None, prompt_id: str | None = None) -> list[Step]:
        steps: list[Step] = []
        if flow_id is None:
            found = self.find_flow(flow_name)
            flow_id = found["id"] if found else None
        if flow_id is None:
            steps.append(Step("flow", "absent", flow_name))
        else:
            try:
                for alias in self.aliases(flow_id):
                    if alias["id"] == "TSTALIASID":  # the built-in test alias goes with the flow
                        continue
                    self._call(self.agent, "delete_flow_alias", flowIdentifier=flow_id, aliasIdentifier=alias["id"])
                    steps.append(Step("alias", "deleted", f"{alias['id']} ({alias['name']})"))
                for version in self.flow_versions(flow_id):
                    self._call(self.agent, "delete_flow_version", flowIdentifier=flow_id, flowVersion=version)
                    steps.append(Step("flow-version", "deleted", version))
                self._call(self.agent, "delete_flow", flowIdentifier=flow_id)
                steps.append(Step("flow", "deleted", flow_id))
            except ControlError as exc:
                if not self._missing(exc):
                    raise
                steps.append(Step("flow", "absent", flow_id))
        if prompt_id is None:
            found = self.find_prompt(prompt_name)
            prompt_id = found["id"] if found else None
        if prompt_id is None:
            steps.append(Step("prompt", "absent", prompt_name))
        else:
            try:
                self._call(self.agent, "delete_prompt", promptIdentifier=prompt_id)
                steps.append(Step("prompt", "deleted", f"{prompt_id} (all versions)"))
            except ControlError as exc:
                if not self._missing(exc):
                    raise
                steps.append(Step("prompt", "absent", prompt_id))
        return steps


@dataclass
class Status:
    flow_id: str
    alias_id: str
    flow_version: str
    prompt_id: str
    prompt_version: str
    model_id: str
    flow_status: str
    problems: list[str] = field(default_factory=list)
    diff: list[str] = field(default_factory=list)

    @property
    def current(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        state = "current" if self.current else "STALE"
        out = [f"{state}: alias {self.alias_id} of flow {self.flow_id} serves flow version {self.flow_version} "
               f"({self.flow_status}), prompt {self.prompt_id} version {self.prompt_version}, model {self.model_id}"]
        out += [f"  - {p}" for p in self.problems]
        if not self.current:
            out.append("  fix: python -m gateway bedrock setup (same --region/--config) deploys the schema's prompt")
        return out


def write_config(path: str | Path, config: dict[str, Any]) -> Step:
    """Write the gateway's flow config (ids only, never credentials) atomically; unchanged
    content is not rewritten."""
    path = Path(path)
    text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return Step("config", "unchanged", str(path))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    FlowConfig.load(path)  # what the gateway will read must load
    return Step("config", "written", str(path))


def read_config(path: str | Path) -> dict[str, Any]:
    return FlowConfig.read(path)
