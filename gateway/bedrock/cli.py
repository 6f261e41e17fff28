"""`python -m gateway bedrock setup|status|teardown|smoke|policy` (see docs/bedrock.md).

Exit codes: 0 done / current; 1 `status` found the deployed prompt stale, or `smoke` failed;
2 a bad flag, an unreadable config or a failed AWS call (the message names the call, the
error and the remedy)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DEFAULT_CONFIG = "bedrock-flow.json"


def _env(name: str) -> str | None:
    return os.environ.get(name) or None


def add_parser(commands: argparse._SubParsersAction) -> None:
    bedrock = commands.add_parser(
        "bedrock", help="set up, check, smoke-test or remove the Bedrock prompt flow (docs/bedrock.md)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = bedrock.add_subparsers(dest="bedrock_command", required=True)
    fmt = argparse.ArgumentDefaultsHelpFormatter

    def common(parser: argparse.ArgumentParser, config_required: bool = False) -> None:
        parser.add_argument("--region", default=_env("AWS_REGION"),
                            help="AWS region (env AWS_REGION); a config file's region wins")
        parser.add_argument("--endpoint-url", default=_env("BEDROCK_ENDPOINT_URL"),
                            help="override the Bedrock endpoints, e.g. a local fake (env BEDROCK_ENDPOINT_URL)")
        parser.add_argument("--model-id", default=_env("BEDROCK_MODEL_ID"),
                            help="Nova Pro model or inference profile id (env BEDROCK_MODEL_ID); default: "
                                 "the region's profile, e.g. apac.amazon.nova-pro-v1:0 in ap-northeast-2")

    setup = sub.add_parser("setup", formatter_class=fmt,
                           help="create or update the prompt, flow, version and alias; write the config")
    common(setup)
    setup.add_argument("--config", default=DEFAULT_CONFIG, help="flow config file to write (ids, no credentials)")
    setup.add_argument("--role-arn", default=_env("BEDROCK_FLOW_ROLE_ARN"),
                       help="IAM role the flow runs as, needed to create it (env BEDROCK_FLOW_ROLE_ARN)")
    setup.add_argument("--prompt-name", default="customer-vectorizer", help="Prompt management name")
    setup.add_argument("--flow-name", default="customer-vectorizer", help="flow name")
    setup.add_argument("--alias-name", default="live", help="flow alias name")

    status = sub.add_parser("status", formatter_class=fmt,
                            help="is the prompt the alias serves the one the schema generates now? (exit 1 if stale)")
    common(status)
    status.add_argument("--config", default=DEFAULT_CONFIG, help="flow config file written by setup")
    status.add_argument("--diff", action="store_true", help="print the prompt's differences (deployed -> schema)")

    teardown = sub.add_parser("teardown", formatter_class=fmt,
                              help="delete the alias, flow versions, flow and prompt setup made, and the config")
    common(teardown)
    teardown.add_argument("--config", default=DEFAULT_CONFIG, help="flow config file written by setup")
    teardown.add_argument("--prompt-name", default="customer-vectorizer", help="used when there is no config file")
    teardown.add_argument("--flow-name", default="customer-vectorizer", help="used when there is no config file")

    smoke = sub.add_parser("smoke", formatter_class=fmt,
                           help="vectorize one text through Bedrock: vector, latency, flow execution id")
    common(smoke)
    smoke.add_argument("text", help="the customer message")
    smoke.add_argument("--vectorizer", choices=("bedrock-flow", "bedrock-converse"), default="bedrock-flow")
    smoke.add_argument("--config", default=_env("BEDROCK_CONFIG") or DEFAULT_CONFIG,
                       help="flow config file for bedrock-flow (env BEDROCK_CONFIG)")
    smoke.add_argument("--timeout", type=float, default=30.0, help="seconds the whole call may take")

    policy = sub.add_parser("policy", formatter_class=fmt,
                            help="print the IAM policies (gateway identity, flow role) for a region, offline")
    common(policy)
    policy.add_argument("--account", default="123456789012", help="AWS account id to put in the ARNs")


def main(args: argparse.Namespace) -> int:
    from gateway.bedrock.control import ControlError

    try:
        return COMMANDS[args.bedrock_command](args)
    except (ControlError, ValueError, OSError) as exc:  # OSError: the config file's directory
        print(f"gateway bedrock {args.bedrock_command}: {exc}", file=sys.stderr)
        return 2


def _model_id(args: argparse.Namespace, region: str, configured: str | None = None) -> str:
    from gateway.bedrock import profiles

    return args.model_id or configured or profiles.default_model_id(region)


def _config_region(args: argparse.Namespace, config: dict | None) -> str:
    from gateway.vectorizers.bedrock import resolve_region

    if config and config.get("region"):
        if args.region and args.region != config["region"]:
            print(f"note: using the config file's region {config['region']} (not {args.region})", file=sys.stderr)
        return config["region"]
    return resolve_region(args.region)


def _setup(args: argparse.Namespace) -> int:
    from gateway.bedrock import control, profiles
    from gateway.vectorizers.bedrock import resolve_region

    region = resolve_region(args.region)
    model_id = _model_id(args, region)
    desired = control.Desired(region=region, model_id=model_id, role_arn=args.role_arn,
                              prompt_name=args.prompt_name, flow_name=args.flow_name, alias_name=args.alias_name)
    plane = control.BedrockControl(region, args.endpoint_url)
    steps, config = plane.setup(desired)
    steps.append(control.write_config(args.config, config))
    for step in steps:
        print(step)
    destinations, source = plane.profile_destinations(model_id)
    account = control.account_of(plane._call(plane.agent, "get_flow", flowIdentifier=config["flowIdentifier"])["arn"])
    print(f"\nserve with: python -m gateway serve --vectorizer bedrock-flow --bedrock-config {args.config}")
    print(f"\nmodel {model_id} from {region}: {source}: "
          f"{', '.join(destinations or profiles.routed_regions(region, model_id))}")
    print("IAM policy of the gateway's identity:")
    print(profiles.render(profiles.gateway_policy(region, model_id, account, config["flowIdentifier"],
                                                  config["flowAliasIdentifier"], destinations)))
    print("IAM policy of the flow's execution role:")
    print(profiles.render(profiles.flow_role_policy(region, model_id, account, config["promptIdentifier"],
                                                    destinations)))
    return 0


def _status(args: argparse.Namespace) -> int:
    from gateway.bedrock import control

    config = control.read_config(args.config)
    region = _config_region(args, config)
    desired = control.Desired(region=region, model_id=_model_id(args, region, config.get("modelId")))
    status = control.BedrockControl(region, args.endpoint_url).status(
        config["flowIdentifier"], config["flowAliasIdentifier"], desired)
    for line in status.lines():
        print(line)
    if args.diff:
        for line in status.diff:
            print(line)
    return 0 if status.current else 1


def _teardown(args: argparse.Namespace) -> int:
    from gateway.bedrock import control

    path = Path(args.config)
    config = control.read_config(path) if path.exists() else None
    region = _config_region(args, config)
    plane = control.BedrockControl(region, args.endpoint_url)
    if config:
        steps = plane.teardown(flow_id=config["flowIdentifier"], prompt_id=config.get("promptIdentifier"),
                               prompt_name=config.get("promptName", args.prompt_name))
        path.unlink()
        steps.append(control.Step("config", "deleted", str(path)))
    else:
        steps = plane.teardown(flow_name=args.flow_name, prompt_name=args.prompt_name)
    for step in steps:
        print(step)
    return 0


def _smoke(args: argparse.Namespace) -> int:
    from gateway.bedrock.smoke import smoke
    from gateway.evaluation import build_for_evaluation

    options = {"endpoint_url": args.endpoint_url, "region": args.region, "model_id": args.model_id,
               "timeout_s": args.timeout}
    if args.vectorizer == "bedrock-flow":
        options["bedrock_config_path"] = args.config
    vectorizer = build_for_evaluation(args.vectorizer, **options)
    result = smoke(vectorizer, args.text, args.timeout)
    for line in result.lines(args.vectorizer):
        print(line)
    return 0 if result.error is None else 1


def _policy(args: argparse.Namespace) -> int:
    from gateway.bedrock import profiles
    from gateway.vectorizers.bedrock import resolve_region

    region = resolve_region(args.region)
    model_id = _model_id(args, region)
    print(f"model {model_id} from {region} may be served in: {', '.join(profiles.routed_regions(region, model_id))}")
    print("IAM policy of the gateway's identity:")
    print(profiles.render(profiles.gateway_policy(region, model_id, args.account)))
    print("IAM policy of the flow's execution role:")
    print(profiles.render(profiles.flow_role_policy(region, model_id, args.account)))
    print("trust policy of the flow's execution role:")
    print(profiles.render(profiles.FLOW_ROLE_TRUST_POLICY))
    return 0


COMMANDS = {"setup": _setup, "status": _status, "teardown": _teardown, "smoke": _smoke, "policy": _policy}
