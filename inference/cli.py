"""Command line of the inference server.

    python -m inference --models-dir models --port 8500 --workers 2 --metrics-port 9100

The supervisor starts --workers processes; each serves the shared --port and its own port
--port+1+i. Every flag, its environment variable and its default are declared once, in
recommender.settings.InferenceSettings (--help shows them all).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import signal
import sys

from recommender import request_ids, security
from recommender.settings import InferenceSettings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m inference", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    InferenceSettings.add_arguments(parser)
    parser.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)  # set by the supervisor
    parser.add_argument("--worker-config", help=argparse.SUPPRESS)
    return parser


def _configure_logging(level: str, worker: int | None) -> None:
    who = "supervisor" if worker is None else f"worker-{worker}"
    logging.basicConfig(
        level=level.upper(), stream=sys.stderr,
        format=f"%(asctime)s level=%(levelname)s proc={who} pid=%(process)d logger=%(name)s %(message)s")
    request_ids.install_log_context()  # caller=... request_id=... on every line about a call


def _die_with_parent() -> None:
    """Linux: a worker gets SIGTERM when its supervisor dies, so no orphan keeps a port."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.worker_index is not None:
        settings = InferenceSettings(**json.loads(args.worker_config))
        _configure_logging(settings.log_level, args.worker_index)
        _die_with_parent()
        from inference.server import run_worker

        run_worker(settings, args.worker_index)
        return 0
    settings = InferenceSettings.from_args(args)
    _configure_logging(settings.log_level, None)
    if settings.workers < 1:
        parser.error("--workers must be at least 1")
    try:  # before any worker starts: a worker that cannot bind would be restarted forever
        security.check_settings(settings, "inference")
    except security.SecurityConfigError as exc:
        print(f"inference: {exc}", file=sys.stderr)
        return 2
    from inference.workers import Supervisor

    return Supervisor(settings).run()
