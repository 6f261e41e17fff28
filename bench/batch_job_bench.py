"""Benchmark of the batch job: rows/s of `clients.batch` over generated customers, next to
the rows/s of calling the same SavedModel in-process with TensorFlow.

    python -m bench ...        (bench/__main__.py calls run(args))
    python -m bench.batch_job_bench [--rows 100000] [--models-dir models]

Steps: generate customers with the trainer, start an inference server (and a gateway in
front of it) on free ports, run the batch job against each, then time 1,000-row calls of
the SavedModel in a separate Python process, so this one never imports TensorFlow.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.models import ensure_model
from clients.batch import run_job
from recommender import model_repository
from tests.support import PYTHON, ROOT, ServerProcess, free_port, wait_for_health

# Runs in its own process: loads the SavedModel and times repeated 1,000-row calls.
TF_TIMER = r"""
import json, sys, time
import numpy as np, pandas as pd, tensorflow as tf
model_dir, data, rows_per_call, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
from recommender.schema import SLOT_NAMES
columns = list(SLOT_NAMES)
matrix = pd.read_csv(data, usecols=columns, nrows=rows_per_call)[columns].to_numpy(np.float32)
fn = tf.saved_model.load(model_dir).signatures["serving_default"]
name = next(iter(fn.structured_input_signature[1]))
batch = tf.constant(matrix)
for _ in range(20):
    fn(**{name: batch})
calls, start = 0, time.perf_counter()
while time.perf_counter() - start < seconds:
    out = fn(**{name: batch})
    next(iter(out.values())).numpy()
    calls += 1
elapsed = time.perf_counter() - start
print(json.dumps({"rows_per_s": calls * len(matrix) / elapsed, "calls": calls, "rows_per_call": len(matrix)}))
"""


def _job(label: str, target: str, data: Path, work: Path, rows: int, chunk_rows: int, in_flight: int) -> float:
    output = work / f"recs-{label}.csv"
    summary = run_job(target, data, output, chunk_rows=chunk_rows, max_in_flight=in_flight,
                      progress=False, timeout=30)
    if summary.rows_total != rows:
        raise RuntimeError(f"{label}: wrote {summary.rows_total} rows for {rows} customers")
    return summary.rows_per_second


def run(args) -> None:
    rows = int(getattr(args, "rows", None) or getattr(args, "batch_rows", None) or 100_000)
    models_dir = Path(getattr(args, "models_dir", None) or os.environ.get("MODELS_DIR", "models"))
    workers = int(getattr(args, "workers", None) or 1)
    chunk_rows = int(getattr(args, "chunk_rows", None) or 1000)
    in_flight = int(getattr(args, "max_in_flight", None) or 4)
    with tempfile.TemporaryDirectory(prefix="batch-bench-") as tmp:
        work = Path(tmp)
        data = work / "customers.csv"
        print(f"batch job benchmark: {rows:,} generated customers, chunks of {chunk_rows:,}, "
              f"{in_flight} in flight", flush=True)
        subprocess.run([PYTHON, "-m", "trainer", "generate", "--rows", str(rows), "--seed", "11",
                        "--out", str(data)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        serving_dir = ensure_model(models_dir, work)
        version_dir = model_repository.version_dir(serving_dir, model_repository.latest_version(serving_dir))

        results: list[tuple[str, float | None, str]] = []
        inference_port = free_port()
        inference = ServerProcess([PYTHON, "-m", "inference", "--models-dir", str(serving_dir), "--host", "127.0.0.1",
                             "--port", str(inference_port), "--workers", str(workers), "--metrics-port", "0"],
                            work / "inference.log").start()
        try:
            wait_for_health(f"127.0.0.1:{inference_port}", timeout=120, process=inference.process)
            target = f"127.0.0.1:{inference_port}"
            results.append((f"batch job -> inference server ({workers} worker)",
                            _job("inference", target, data, work, rows, chunk_rows, in_flight), ""))
            gateway_port = free_port()
            gateway = ServerProcess([PYTHON, "-m", "gateway", "serve", "--port", str(gateway_port),
                               "--inference", target, "--metrics-port", "0"], work / "gateway.log").start()
            try:
                wait_for_health(f"127.0.0.1:{gateway_port}", timeout=60, process=gateway.process)
                results.append(("batch job -> gateway -> inference server",
                                _job("gateway", f"127.0.0.1:{gateway_port}", data, work, rows, chunk_rows,
                                     in_flight), ""))
            except (RuntimeError, TimeoutError) as exc:
                results.append(("batch job -> gateway -> inference server", None, f"skipped: {exc}"))
            finally:
                gateway.stop()
        finally:
            inference.stop()

        timer = subprocess.run([PYTHON, "-c", TF_TIMER, str(version_dir), str(data), "1000", "3"],
                               cwd=ROOT, capture_output=True, text=True)
        if timer.returncode == 0:
            import json

            tf_rate = json.loads(timer.stdout.strip().splitlines()[-1])["rows_per_s"]
            results.append(("in-process TensorFlow SavedModel, 1,000-row calls", tf_rate, ""))
        else:
            results.append(("in-process TensorFlow SavedModel, 1,000-row calls", None,
                            "failed: " + timer.stderr.strip().splitlines()[-1]))

    width = max(len(label) for label, _, _ in results)
    for label, rate, note in results:
        shown = f"{rate:>12,.0f} rows/s" if rate is not None else f"{'-':>12}       "
        print(f"  {label:<{width}}  {shown}  {note}".rstrip(), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.batch_job_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--models-dir", default=os.environ.get("MODELS_DIR", "models"))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--chunk-rows", type=int, default=1000)
    parser.add_argument("--max-in-flight", type=int, default=4)
    run(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
