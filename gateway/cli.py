"""Command line of the gateway.

    python -m gateway serve --port 50051 --inference 127.0.0.1:8501,127.0.0.1:8502
    python -m gateway print-prompt      # the Bedrock prompt, to paste into the console
    python -m gateway evaluate --vectorizer local --labels FILE.jsonl   # accuracy + latency
    python -m gateway bedrock setup --region ap-northeast-2   # the Bedrock flow, by one command

Every serve flag has an environment default (shown in --help) so containers and `make serve`
configure the gateway without a wrapper script; flags, environment names and defaults are
declared once, in recommender.settings.GatewaySettings."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from gateway.vectorizers.base import NAMES
from recommender import request_ids, security
from recommender.settings import GatewaySettings

LOG_FORMAT = "ts=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve", help="run the gateway gRPC server",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    # Every serve flag, its environment variable and default: recommender.settings.GatewaySettings.
    GatewaySettings.add_arguments(serve, choices={"vectorizer": NAMES})

    commands.add_parser("print-prompt", help="print the Bedrock system prompt (paste it into "
                                             "the Bedrock console's prompt / flow)")

    evaluate = commands.add_parser(
        "evaluate", help="accuracy (per slot, exact vector) and latency of a vectorizer on a labelled "
                         "JSONL file", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    evaluate.add_argument("--vectorizer", choices=NAMES, default="local", help="the vectorizer to measure")
    evaluate.add_argument("--labels", required=True, action="append",
                          help="labelled JSONL file ({\"text\", \"features\"} per line); repeat to join files")
    evaluate.add_argument("--bedrock-config", default=_env("BEDROCK_CONFIG"),
                          help="flow config JSON for bedrock-flow (env BEDROCK_CONFIG)")
    evaluate.add_argument("--model-id", default=_env("BEDROCK_MODEL_ID"), help="Converse model id (env BEDROCK_MODEL_ID)")
    evaluate.add_argument("--region", default=_env("AWS_REGION"), help="AWS region (env AWS_REGION)")
    evaluate.add_argument("--endpoint-url", default=_env("BEDROCK_ENDPOINT_URL"),
                          help="override the Bedrock endpoint, e.g. a local fake (env BEDROCK_ENDPOINT_URL)")
    evaluate.add_argument("--misses", action="store_true", help="also print every message read wrong")
    evaluate.add_argument("--json", action="store_true", help="print the figures as one JSON object")

    from gateway.bedrock import cli as bedrock_cli  # setup|status|teardown|smoke|policy (no boto3 at import)

    bedrock_cli.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "print-prompt":
        from gateway.vectorizers.prompt import render_prompt

        sys.stdout.write(render_prompt().rstrip("\n") + "\n")
        return 0
    if args.command == "evaluate":
        return _evaluate(args)
    if args.command == "bedrock":
        from gateway.bedrock import cli as bedrock_cli

        logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
        return bedrock_cli.main(args)

    settings = GatewaySettings.from_args(args)
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
    request_ids.install_log_context()  # caller=... request_id=... on every line about a call
    # botocore logs request details at DEBUG; keep it quiet even when we are not.
    logging.getLogger("botocore").setLevel(logging.WARNING)
    from gateway.backend import parse_addresses
    from gateway.server import serve

    try:
        parse_addresses(settings.inference)
    except ValueError as exc:
        build_parser().error(str(exc))
    try:
        security.check_settings(settings, "gateway")
    except security.SecurityConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(settings))
    except ValueError as exc:  # a bad flag combination, e.g. bedrock-flow without --bedrock-config
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import json

    from gateway import evaluation

    try:
        messages = evaluation.load_labelled(args.labels)
        vectorizer = evaluation.build_for_evaluation(
            args.vectorizer, bedrock_config_path=args.bedrock_config, model_id=args.model_id,
            region=args.region, endpoint_url=args.endpoint_url)
    except (OSError, ValueError) as exc:
        print(f"gateway evaluate: {exc}", file=sys.stderr)
        return 2
    report = evaluation.evaluate(vectorizer, messages)
    if args.json:
        print(json.dumps({"vectorizer": args.vectorizer, **report.to_json()}))
    else:
        print(evaluation.format_report(report, args.vectorizer, show_misses=args.misses))
    return 0
