"""Command line of the batch job, both engines.

    python -m clients.batch --target 127.0.0.1:8500 --input customers.csv --output recs.csv [--resume]
    python -m clients.batch --engine ray --input IN.(csv|parquet) --output OUT_DIR
        [--scorer local|grpc] [--models-dir models] [--model-version N] [--partition-rows 100000]

Flags that belong to one engine are refused with the other, so a typo cannot be silently ignored.
"""

from __future__ import annotations

import argparse
import os
import sys

from clients.batch.grpc_options import CA_ENV, TOKEN_ENV, default_ca, default_token
from clients.batch.rows import InputError

GRPC_ONLY = ("chunk_rows", "max_in_flight", "resume")
RAY_ONLY = ("scorer", "models_dir", "model_version", "backend", "partition_rows", "actors", "s3_endpoint")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m clients.batch",
                                     description="Batch recommendations: customers in, top-k products out.")
    parser.add_argument("--engine", choices=("grpc", "ray"), default="grpc",
                        help="grpc: stream through a server into one CSV (default); "
                             "ray: a Ray Data job into Parquet partitions + manifest.json")
    parser.add_argument("--input", required=True,
                        help="customers .csv or .parquet (ray: also s3://bucket/key)")
    parser.add_argument("--output", required=True,
                        help="grpc: recommendations .csv; ray: output folder (local or s3://)")
    parser.add_argument("--target", default=None,
                        help="grpc engine and --scorer grpc: server host:port (default 127.0.0.1:8500; "
                             "text input through the grpc engine needs the gateway)")
    parser.add_argument("--id-column", default=None,
                        help="input column copied to the output (default: 'id' if present, else the row position)")
    parser.add_argument("--top-k", type=int, default=3, help="products per customer, 1-10")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a server to connect/answer")
    parser.add_argument("--tls", action="store_true", help="use TLS (system root certificates)")
    parser.add_argument("--token", default=None,
                        help=f"bearer token sent to the server (default ${TOKEN_ENV})")
    parser.add_argument("--ca", default=None, help=f"PEM file of the server's CA, implies TLS (default ${CA_ENV})")
    parser.add_argument("--rate-limit", type=float, default=None,
                        help="most rows per second (0: as fast as possible), to share a server or cluster")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    grpc_engine = parser.add_argument_group("grpc engine")
    grpc_engine.add_argument("--chunk-rows", type=int, default=None, help="customers per streamed batch (1000)")
    grpc_engine.add_argument("--max-in-flight", type=int, default=None, help="batches sent but not yet answered (4)")
    grpc_engine.add_argument("--resume", action="store_true", default=None,
                             help="continue an interrupted job's output")
    ray_engine = parser.add_argument_group("ray engine (a rerun always resumes)")
    ray_engine.add_argument("--scorer", choices=("local", "grpc"), default=None,
                            help="local: actors load the model (default); grpc: actors call --target")
    ray_engine.add_argument("--models-dir", default=None,
                            help="model repository for --scorer local (default $MODELS_DIR or models)")
    ray_engine.add_argument("--model-version", type=int, default=None,
                            help="pin this version (default: the newest when the job starts)")
    ray_engine.add_argument("--backend", choices=("auto", "tflite", "function", "xla"), default=None,
                            help="model backend of the scoring actors, as the inference server's (auto)")
    ray_engine.add_argument("--partition-rows", type=int, default=None,
                            help="input rows per output partition (default 100000, or the manifest's on a rerun)")
    ray_engine.add_argument("--actors", type=int, default=None,
                            help="scoring actors (default: one per CPU for vectors, one per 4 CPUs for text)")
    ray_engine.add_argument("--s3-endpoint", default=None,
                            help="S3-compatible endpoint URL (default $AWS_ENDPOINT_URL_S3 or $AWS_ENDPOINT_URL)")
    return parser


def _refuse_foreign_flags(args, engine: str, names: tuple[str, ...]) -> None:
    given = [name for name in names if getattr(args, name) is not None]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise InputError(f"{flags} only apply to the {'ray' if engine == 'grpc' else 'grpc'} engine")


def _run_grpc(args) -> int:
    from clients.batch.grpc_job import run_job
    from clients.client import RecommenderError

    try:
        summary = run_job(args.target or "127.0.0.1:8500", args.input, args.output, id_column=args.id_column,
                          top_k=args.top_k, chunk_rows=args.chunk_rows or 1000,
                          max_in_flight=args.max_in_flight or 4, resume=bool(args.resume),
                          timeout=args.timeout, tls=args.tls, progress=not args.quiet,
                          rate_limit=args.rate_limit or 0.0, token=args.token or default_token(),
                          ca_path=args.ca or default_ca())
    except RecommenderError as exc:
        print(f"batch: {exc.code.name}: {exc.details} (the output so far is kept; rerun with --resume)",
              file=sys.stderr)
        return 1
    resumed = f", resumed after {summary.skipped_on_resume}" if summary.skipped_on_resume else ""
    print(f"batch: {summary.rows_this_run} rows in {summary.seconds:.1f} s "
          f"({summary.rows_per_second:,.0f} rows/s), {summary.error_rows} with errors{resumed}; "
          f"{summary.rows_total} rows in {summary.output}", file=sys.stderr)
    return 0


def _run_ray(args) -> int:
    from clients.batch.ray_job import print_summary, run_ray_job
    from clients.client import RecommenderError

    scorer = args.scorer or "local"
    if scorer == "local" and args.target:
        raise InputError("--target is for --scorer grpc (the local scorer loads the model itself)")
    try:
        summary = run_ray_job(
            args.input, args.output, id_column=args.id_column, top_k=args.top_k, scorer=scorer,
            models_dir=args.models_dir or os.environ.get("MODELS_DIR", "models"),
            model_version=args.model_version, backend=args.backend or "auto", target=args.target,
            tls=args.tls, token=args.token or default_token(), ca_path=args.ca or default_ca(),
            timeout=args.timeout, partition_rows=args.partition_rows, actors=args.actors,
            s3_endpoint=args.s3_endpoint, progress=not args.quiet, rate_limit=args.rate_limit or 0.0)
    except RecommenderError as exc:
        print(f"batch: {exc.code.name}: {exc.details} (finished partitions are kept; rerun to continue)",
              file=sys.stderr)
        return 1
    print_summary(summary)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.engine == "grpc":
            _refuse_foreign_flags(args, "grpc", RAY_ONLY)
            return _run_grpc(args)
        _refuse_foreign_flags(args, "ray", GRPC_ONLY)
        return _run_ray(args)
    except (InputError, ValueError, OSError) as exc:
        print(f"batch: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
