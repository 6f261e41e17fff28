"""`make bench`: the benchmark sections in order, one model shared by all.

    python -m bench [--models-dir DIR] [--duration 2.5] [--workers N] [--only inference,gateway,batch_job,edge]

1. bench/inference_bench.py  the inference server vs a bare gRPC echo server and in-process TF
2. bench/gateway_bench.py    the gateway (when that module exists)
3. bench/batch_job_bench.py  the batch job (when that module exists)
4. bench/edge_bench.py       calls through Envoy with TLS beside the gateway direct

Each section exposes run(args) and prints its own table. Without --models-dir a model is
trained once with the trainer CLI into a temp folder and passed to every section.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

SECTIONS = ("inference", "gateway", "batch_job", "edge")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", help="model repository to use (default: train one into a temp dir)")
    parser.add_argument("--duration", type=float, default=2.5, help="seconds per measured run")
    parser.add_argument("--workers", type=int, help="inference worker processes (default: CPU count)")
    parser.add_argument("--only", help=f"comma-separated sections to run, of {', '.join(SECTIONS)}")
    args = parser.parse_args(argv)
    wanted = args.only.split(",") if args.only else list(SECTIONS)

    work = Path(tempfile.mkdtemp(prefix="bench-"))
    failed = []
    try:
        if not args.models_dir:
            from bench.models import ensure_model

            args.models_dir = str(ensure_model(None, work))
        for section in SECTIONS:
            if section not in wanted:
                continue
            name = f"bench.{section}_bench"
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name == name:
                    print(f"\n== {section}: skipped ({name} does not exist yet)")
                    continue
                raise
            print(f"\n== {section}", flush=True)
            started = time.monotonic()
            try:
                module.run(args)
            except Exception:  # one broken section must not hide the others' numbers
                traceback.print_exc()
                failed.append(section)
            print(f"   ({section} section took {time.monotonic() - started:.0f} s)", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failed:
        print(f"\nsections that failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
