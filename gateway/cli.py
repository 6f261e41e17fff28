"""Command line of the gateway.

    python -m gateway serve --port 50051 --inference 127.0.0.1:8501,127.0.0.1:8502
    python -m gateway print-prompt      # the Bedrock prompt, to paste into the console
    python -m gateway evaluate --vectorizer local --labels FILE.jsonl   # accuracy + latency

Every flag has an environment default (shown in --help) so containers and `make serve`
configure the gateway without a wrapper script."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from gateway.vectorizers.base import NAMES

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
    serve.add_argument("--port", type=int, default=int(_env("GATEWAY_PORT", "50051")),
                       help="gRPC port (env GATEWAY_PORT)")
    serve.add_argument("--host", default=_env("GATEWAY_HOST", "127.0.0.1"),
                       help="address to listen on; 0.0.0.0 for all interfaces (env GATEWAY_HOST)")
    serve.add_argument("--inference", default=_env("GATEWAY_INFERENCE", "127.0.0.1:8500"),
                       help="inference server address(es) host:port[,host:port...], balanced "
                            "round-robin (env GATEWAY_INFERENCE)")
    serve.add_argument("--vectorizer", choices=NAMES, default=_env("VECTORIZER", "local"),
                       help="how text becomes a vector (env VECTORIZER)")
    serve.add_argument("--fallback", choices=("local", "none"), default=_env("GATEWAY_FALLBACK", "local"),
                       help="when Bedrock fails: answer with the local vectorizer, or UNAVAILABLE "
                            "(env GATEWAY_FALLBACK)")
    serve.add_argument("--bedrock-config", default=_env("BEDROCK_CONFIG"),
                       help="JSON file with region, flowIdentifier, flowAliasIdentifier (no "
                            "credentials: those come from the AWS default chain) (env BEDROCK_CONFIG)")
    serve.add_argument("--model-id", default=_env("BEDROCK_MODEL_ID"),
                       help="Bedrock Converse model id; default amazon.nova-pro-v1:0 (env BEDROCK_MODEL_ID)")
    serve.add_argument("--bedrock-timeout", type=float, default=float(_env("BEDROCK_TIMEOUT", "10")),
                       help="seconds per Bedrock call (env BEDROCK_TIMEOUT)")
    serve.add_argument("--region", default=_env("AWS_REGION"), help="AWS region (env AWS_REGION)")
    serve.add_argument("--endpoint-url", default=_env("BEDROCK_ENDPOINT_URL"),
                       help="override the Bedrock endpoint, e.g. a local fake (env BEDROCK_ENDPOINT_URL)")
    serve.add_argument("--cache-size", type=int, default=int(_env("GATEWAY_CACHE_SIZE", "1024")),
                       help="texts kept in the vectorizer LRU cache; 0 disables (env GATEWAY_CACHE_SIZE)")
    serve.add_argument("--metrics-port", type=int, default=int(_env("GATEWAY_METRICS_PORT", "9101")),
                       help="Prometheus /metrics port; 0 disables (env GATEWAY_METRICS_PORT)")
    serve.add_argument("--threads", type=int, default=int(_env("GATEWAY_THREADS", "32")),
                       help="threads for blocking work: Bedrock calls, chat turns, text batches "
                            "(env GATEWAY_THREADS)")
    serve.add_argument("--coalesce-in-flight", type=int,
                       default=int(_env("GATEWAY_COALESCE_IN_FLIGHT", "1")),
                       help="single Recommends forwarded at once; calls arriving while that many are "
                            "in flight leave together as one RecommendBatch (env GATEWAY_COALESCE_IN_FLIGHT)")
    serve.add_argument("--grace", type=float, default=5.0,
                       help="seconds running RPCs get to finish on SIGTERM")
    serve.add_argument("--log-level", default=_env("LOG_LEVEL", "INFO"),
                       help="DEBUG logs customer text; INFO and above never do (env LOG_LEVEL)")

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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "print-prompt":
        from gateway.vectorizers.prompt import render_prompt

        sys.stdout.write(render_prompt().rstrip("\n") + "\n")
        return 0
    if args.command == "evaluate":
        return _evaluate(args)

    logging.basicConfig(level=args.log_level.upper(), format=LOG_FORMAT)
    # botocore logs request details at DEBUG; keep it quiet even when we are not.
    logging.getLogger("botocore").setLevel(logging.WARNING)
    from gateway.forwarding import parse_addresses
    from gateway.server import GatewayConfig, serve

    try:
        parse_addresses(args.inference)
    except ValueError as exc:
        build_parser().error(str(exc))
    config = GatewayConfig(
        inference=args.inference, port=args.port, host=args.host, vectorizer=args.vectorizer,
        fallback=args.fallback, cache_size=args.cache_size, bedrock_config=args.bedrock_config,
        model_id=args.model_id, bedrock_timeout_s=args.bedrock_timeout, region=args.region,
        endpoint_url=args.endpoint_url, metrics_port=args.metrics_port, threads=args.threads,
        coalesce_in_flight=args.coalesce_in_flight, grace_s=args.grace,
    )
    try:
        asyncio.run(serve(config))
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
