"""Benchmark of the batch job: rows/s of `clients.batch` over generated customers, both
engines, next to the rows/s of calling the same SavedModel in-process with TensorFlow.

    python -m bench ...        (bench/__main__.py calls run(args))
    python -m bench.batch_job_bench [--rows 1000000] [--text-rows 1000000] [--models-dir models]

Steps: generate customers with the trainer (and texts), start an inference server (and a
gateway in front of it) on free ports, run the gRPC engine against each, run the Ray engine
(local Ray, scoring actors holding the model) on the same customers as Parquet and CSV and
on the texts, then time 1,000-row calls of the SavedModel in a separate Python process, so
this one never imports TensorFlow. Ray figures are "once started" (first partition scored
to last written: like the gRPC engine's figure, it leaves out loading the model) with the
end-to-end figure (Ray start-up and model loading included) beside them.
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


RAY_GOAL_VECTORS = 3.0  # Ray engine vectors rows/s >= 3x the gRPC engine's, same run
BENCH_PARTITION_ROWS = 50_000  # 20 partitions per million rows: enough to spread over the actors


def _texts_file(path: Path, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bench.gateway_bench import TEXTS

    texts = [TEXTS[i % len(TEXTS)] for i in range(rows)]
    pq.write_table(pa.table({"id": [f"t{i}" for i in range(rows)], "text": texts}), path)


def _ray(label: str, source: Path, work: Path, models_dir: Path, rows: int, **options) -> tuple[str, float, str]:
    from clients.batch.ray_job import run_ray_job

    output = work / f"ray-{label}"
    summary = run_ray_job(str(source), str(output), models_dir=str(models_dir), progress=False,
                          partition_rows=BENCH_PARTITION_ROWS, **options)
    if summary.rows_total != rows:
        raise RuntimeError(f"{label}: wrote {summary.rows_total} rows for {rows} customers")
    note = (f"end to end {summary.rows_per_second:,.0f} rows/s ({summary.seconds:.1f} s, "
            f"start-up and model load included)")
    return label, summary.steady_rows_per_second, note


def _ray_section(results, work: Path, data: Path, serving_dir: Path, rows: int, text_rows: int) -> None:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    import ray

    from clients.batch.ray_job import start_ray

    parquet = work / "customers.parquet"
    pq.write_table(pacsv.read_csv(data), parquet)
    texts = work / "texts.parquet"
    _texts_file(texts, text_rows)
    info = start_ray(quiet=True)
    cores = int(info.get("cpus") or 1)
    try:
        results.append(_ray(f"Ray job, vectors, Parquet, {cores} actors", parquet, work, serving_dir, rows,
                            actors=cores))
        results.append(_ray("Ray job, vectors, Parquet, 1 actor", parquet, work, serving_dir, rows, actors=1))
        results.append(_ray(f"Ray job, vectors, CSV, {cores} actors", data, work, serving_dir, rows, actors=cores))
        results.append(_ray(f"Ray job, texts ({text_rows:,}), Parquet, {cores} cores", texts, work,
                            serving_dir, text_rows))
    finally:
        ray.shutdown()


def run(args) -> None:
    rows = int(getattr(args, "rows", None) or getattr(args, "batch_rows", None) or 1_000_000)
    text_rows = int(getattr(args, "text_rows", None) or 1_000_000)
    models_dir = Path(getattr(args, "models_dir", None) or os.environ.get("MODELS_DIR", "models"))
    workers = int(getattr(args, "workers", None) or 1)
    chunk_rows = int(getattr(args, "chunk_rows", None) or 1000)
    in_flight = int(getattr(args, "max_in_flight", None) or 4)
    with tempfile.TemporaryDirectory(prefix="batch-bench-") as tmp:
        work = Path(tmp)
        data = work / "customers.csv"
        print(f"batch job benchmark: {rows:,} generated customers ({text_rows:,} texts), gRPC engine chunks "
              f"of {chunk_rows:,}, {in_flight} in flight", flush=True)
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
                text_sample = work / "texts-grpc.parquet"
                sample_rows = min(text_rows, 20_000)
                _texts_file(text_sample, sample_rows)
                label = f"batch job, texts ({sample_rows:,}) -> gateway -> inference server"
                try:
                    results.append((label, _job("gateway-texts", f"127.0.0.1:{gateway_port}", text_sample,
                                                work, sample_rows, chunk_rows, in_flight), ""))
                except Exception as exc:  # one failed row must not hide the others
                    results.append((label, None, f"failed: {type(exc).__name__}: {str(exc)[:120]}"))
            except (RuntimeError, TimeoutError) as exc:
                results.append(("batch job -> gateway -> inference server", None, f"skipped: {exc}"))
            finally:
                gateway.stop()
        finally:
            inference.stop()

        try:
            _ray_section(results, work, data, serving_dir, rows, text_rows)
        except Exception as exc:  # the other rows still print
            results.append(("Ray job", None, f"failed: {type(exc).__name__}: {exc}"))

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
    rates = {label: rate for label, rate, _ in results}
    grpc_rate = rates.get(f"batch job -> inference server ({workers} worker)")
    ray_rate = next((rate for label, rate in rates.items() if label.startswith("Ray job, vectors, Parquet")
                     and "1 actor" not in label), None)
    if grpc_rate and ray_rate:
        ratio = ray_rate / grpc_rate
        verdict = "ok" if ratio >= RAY_GOAL_VECTORS else "MISS"
        print(f"  goal: Ray engine vectors >= {RAY_GOAL_VECTORS:.0f}x the gRPC engine: {ratio:.2f}x  {verdict}",
              flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.batch_job_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--text-rows", type=int, default=1_000_000)
    parser.add_argument("--models-dir", default=os.environ.get("MODELS_DIR", "models"))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--chunk-rows", type=int, default=1000)
    parser.add_argument("--max-in-flight", type=int, default=4)
    run(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
