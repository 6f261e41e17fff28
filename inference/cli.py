"""Command line of the inference server.

    python -m inference --models-dir models --port 8500 --workers 2 --metrics-port 9100

The supervisor starts --workers processes; each serves the shared --port and its own port
--port+1+i. Defaults come from the environment (INFERENCE_PORT, MODELS_DIR, WORKERS, ...).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import os
import signal
import sys

from inference.config import BACKENDS, ServerConfig, default_workers


def _env(name: str, default):
    value = os.environ.get(name)
    return type(default)(value) if value not in (None, "") else default


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m inference", description=__doc__.split("\n\n")[0])
    p.add_argument("--models-dir", default=os.environ.get("MODELS_DIR", "models"),
                   help="model repository: <dir>/recommender/<version>/ (env MODELS_DIR)")
    p.add_argument("--host", default=os.environ.get("INFERENCE_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=_env("INFERENCE_PORT", 8500),
                   help="shared port of all workers; worker i also listens on port+1+i")
    p.add_argument("--workers", type=int, default=_env("WORKERS", default_workers()),
                   help="worker processes (default: one per CPU core)")
    p.add_argument("--metrics-port", type=int, default=_env("METRICS_PORT", 9100),
                   help="Prometheus /metrics of all workers (0 disables)")
    p.add_argument("--poll-interval-s", type=float, default=_env("INFERENCE_POLL_INTERVAL_S", 1.0))
    p.add_argument("--max-batch-size", type=int, default=_env("INFERENCE_MAX_BATCH_SIZE", 256),
                   help="dynamic batching: most single requests per model call")
    p.add_argument("--batch-timeout-ms", type=float, default=_env("INFERENCE_BATCH_TIMEOUT_MS", 1.0),
                   help="dynamic batching: longest wait for more single requests to share a model "
                        "call, used only while requests arrive in bursts (a lone caller never "
                        "waits); 0 scores each request at once (see inference/batching.py)")
    p.add_argument("--backend", choices=BACKENDS, default=os.environ.get("INFERENCE_BACKEND", "auto"),
                   help="auto = TFLite interpreter when it converts and matches, else compiled function")
    p.add_argument("--drain-timeout-s", type=float, default=_env("INFERENCE_DRAIN_TIMEOUT_S", 10.0))
    p.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))
    p.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)  # set by the supervisor
    p.add_argument("--worker-config", help=argparse.SUPPRESS)
    return p


def _configure_logging(level: str, worker: int | None) -> None:
    who = "supervisor" if worker is None else f"worker-{worker}"
    logging.basicConfig(
        level=level.upper(), stream=sys.stderr,
        format=f"%(asctime)s level=%(levelname)s proc={who} pid=%(process)d logger=%(name)s %(message)s")


def _die_with_parent() -> None:
    """Linux: a worker gets SIGTERM when its supervisor dies, so no orphan keeps a port."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.log_level, args.worker_index)
    if args.worker_index is not None:
        _die_with_parent()
        config = ServerConfig(**json.loads(args.worker_config))
        from inference.server import run_worker

        run_worker(config, args.worker_index)
        return 0
    if args.workers < 1:
        build_parser().error("--workers must be at least 1")
    config = ServerConfig(
        models_dir=args.models_dir, host=args.host, port=args.port, workers=args.workers,
        metrics_port=args.metrics_port, poll_interval_s=args.poll_interval_s,
        max_batch_size=args.max_batch_size, batch_timeout_ms=args.batch_timeout_ms,
        backend=args.backend, drain_timeout_s=args.drain_timeout_s)
    from inference.workers import Supervisor

    return Supervisor(config).run()
