"""The Ray Data engine of the batch job (`python -m clients.batch --engine ray ...`).

    input (CSV/Parquet, local or s3://)
      -> read in fixed partitions            (ray_source: Parquet in parallel, CSV streamed once)
      -> texts -> vectors                    (ray_scoring.vectorize_texts, tasks; text input only)
      -> score + write part-NNNNN.parquet    (ray_scoring.PartitionWriter, an actor pool that
                                              holds one pinned model version)
    OUT_DIR/manifest.json                    (manifest: identity, counts, timings)

The driver (this process) plans partitions, pins the model version, ships the model files
and writes the manifest; it never imports TensorFlow. Ray runs locally with this machine's
cores unless RAY_ADDRESS names a cluster.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq

from clients.batch import manifest as manifests
from clients.batch import rows as rowlib
from clients.batch import storage
from clients.batch.ray_scoring import METADATA_KEY, PartitionWriter, ScorerSpec, part_name, partition_of
from clients.batch.ray_source import (
    PartitionedInput,
    csv_columns,
    csv_partition_offsets,
    parquet_file,
    partition_count,
)
from recommender import model_repository, schema

log = logging.getLogger("clients.batch.ray")

DEFAULT_PARTITION_ROWS = 100_000
# Files of a version folder the scorer needs (the training report is left behind).
MODEL_FILES_SKIPPED = (".png", model_repository.METRICS_FILE)
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass
class RayJobSummary:
    output: str
    model_version: int
    scorer: str
    rows_total: int  # rows in the output when the job ended
    rows_this_run: int
    error_rows: int  # in the whole output
    partitions: int
    skipped_partitions: int  # already done by an earlier run
    seconds: float  # wall time of this run, Ray start-up and model loading included
    steady_seconds: float  # "once started": see steady_window
    steady_rows: int = 0
    manifest: dict = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        return self.rows_this_run / self.seconds if self.seconds > 0 else 0.0

    @property
    def steady_rows_per_second(self) -> float:
        return self.steady_rows / self.steady_seconds if self.steady_seconds > 0 else 0.0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- ray


def start_ray(quiet: bool = True) -> dict:
    """Connect to the cluster in RAY_ADDRESS, or start a local Ray with this machine's cores
    (no dashboard, Ray's own logs at WARNING). Returns how it was started."""
    import ray

    if ray.is_initialized():
        return {"address": "existing", "cpus": ray.cluster_resources().get("CPU", 0)}
    # Quiet: only Ray's errors (not its notes on token auth or disabled progress bars).
    level = logging.ERROR if quiet else logging.INFO
    common = dict(logging_level=level, log_to_driver=not quiet, configure_logging=True)
    address = os.environ.get("RAY_ADDRESS")
    if address:
        # The nodes run the same installed project (docs/ray-cluster.yaml syncs and installs
        # the checkout); the model version travels with the job.
        ray.init(address=address, **common)
    else:
        ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, **common)
    logging.getLogger("ray.data").setLevel(level)
    return {"address": address or "local", "cpus": ray.cluster_resources().get("CPU", 0)}


# --------------------------------------------------------------------------- model


def resolve_local_model(models_dir: str, pinned: int | None) -> tuple[int, dict[str, bytes], tuple[str, ...]]:
    """(version, its files, catalog product ids), newest version unless pinned; no TensorFlow."""
    versions = model_repository.list_versions(models_dir)
    if not versions:
        raise rowlib.InputError(f"no model versions under {model_repository.model_root(models_dir)} "
                                "(train one with `make train`, or pass --models-dir)")
    version = pinned if pinned is not None else versions[-1]
    if version not in versions:
        raise rowlib.InputError(f"model version {version} is not in {models_dir} "
                                f"(versions: {', '.join(map(str, versions))})")
    folder = model_repository.version_dir(models_dir, version)
    try:
        catalog = model_repository.read_metadata(folder).catalog
    except ValueError as exc:
        raise rowlib.InputError(f"model version {version}: {exc}") from None
    files = {}
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and not path.name.endswith(MODEL_FILES_SKIPPED):
            files[str(path.relative_to(folder))] = path.read_bytes()
    return version, files, catalog.product_ids


def resolve_grpc_version(target: str, pinned: int | None, *, tls: bool, timeout: float, token: str | None,
                         ca_path: str | None) -> int:
    """The version the fleet serves now (or check that a pinned one is loaded): one tiny call."""
    from clients.batch.grpc_options import make_client

    with make_client(target, tls=tls, timeout=timeout, token=token, ca_path=ca_path) as client:
        reply = client.recommend_batch([[0.0] * schema.FEATURE_COUNT], top_k=1, model_version=pinned or 0)
    return int(reply.model_version)


# --------------------------------------------------------------------------- input


def describe_input(where: storage.Location) -> tuple[str, list[str], int | None]:
    """(format, columns, rows or None for CSV)."""
    fmt = FORMATS.get(where.suffix)
    if fmt is None:
        raise rowlib.InputError(f"input {where.uri}: use a .csv or .parquet file")
    if fmt == "parquet":
        source = parquet_file(where)
        return fmt, list(source.schema_arrow.names), source.metadata.num_rows
    return fmt, csv_columns(where), None


def done_partitions(output: storage.Location, job_key: str) -> dict[int, dict]:
    """Partition -> its record, for every part file in OUT_DIR (refusing another job's parts)."""
    fs = output.filesystem()
    done = {}
    for name in storage.list_names(output):
        partition = partition_of(name)
        if partition is None:
            continue
        path = output.child(name).path
        try:
            metadata = pq.read_metadata(fs.open_input_file(path)).metadata or {}
            record = json.loads(metadata[METADATA_KEY])
        except (KeyError, ValueError, OSError) as exc:
            raise manifests.OutputMismatch(f"{output.child(name).uri} is not a partition this job wrote "
                                           f"({type(exc).__name__}); use a new --output") from None
        if record.get("job") != job_key:
            raise manifests.OutputMismatch(f"{output.child(name).uri} was written by another job (different "
                                           "input, version or shape); use a new --output")
        done[partition] = record
    return done


# --------------------------------------------------------------------------- the job


def run_ray_job(input_uri: str, output_uri: str, *, id_column: str | None = None, top_k: int = 3,
                scorer: str = "local", models_dir: str = "models", model_version: int | None = None,
                backend: str = "auto", target: str | None = None, tls: bool = False, token: str | None = None,
                ca_path: str | None = None, timeout: float = 30.0, partition_rows: int | None = None,
                actors: int | None = None, s3_endpoint: str | None = None, rate_limit: float = 0.0,
                progress: bool = True, quiet_ray: bool = True) -> RayJobSummary:
    started_wall = time.time()
    started = time.perf_counter()
    source = storage.location(input_uri, s3_endpoint=s3_endpoint)
    output = storage.location(output_uri, s3_endpoint=s3_endpoint)
    k = schema.resolve_top_k(top_k)
    if partition_rows is not None and partition_rows < 1:
        raise rowlib.InputError("--partition-rows must be at least 1")
    if actors is not None and actors < 1:
        raise rowlib.InputError("--actors must be at least 1")
    try:
        fingerprint = storage.fingerprint(source)
    except FileNotFoundError as exc:
        raise rowlib.InputError(str(exc)) from None
    fmt, columns, total_rows = describe_input(source)
    mode = rowlib.input_mode(columns, source.uri)
    id_name = rowlib.resolve_id_column(columns, id_column, source.uri)

    if scorer == "local":
        version, model_files, _catalog = resolve_local_model(models_dir, model_version)
        spec = ScorerSpec("local", version, model_files=model_files, backend=backend)
    elif scorer == "grpc":
        if not target:
            raise rowlib.InputError("--scorer grpc needs --target host:port of the inference fleet")
        version = resolve_grpc_version(target, model_version, tls=tls, timeout=timeout, token=token,
                                       ca_path=ca_path)
        spec = ScorerSpec("grpc", version, target=target, tls=tls, timeout=timeout, token=token, ca_path=ca_path)
    else:
        raise rowlib.InputError(f"unknown --scorer {scorer!r}; use local or grpc")

    previous = manifests.read(output)
    if partition_rows is None:
        partition_rows = int(previous.get("job", {}).get("partition_rows", DEFAULT_PARTITION_ROWS)) \
            if previous else DEFAULT_PARTITION_ROWS
    identity = {"input": source.uri, "fingerprint": fingerprint, "format": fmt, "mode": mode,
                "id_column": id_name, "top_k": k, "model_version": version, "partition_rows": partition_rows}
    if previous is not None:
        manifests.check_same_job(previous, identity, output.uri)
    job_key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]

    storage.ensure_dir(output)
    storage.remove_stale_temp_files(output)
    done = done_partitions(output, job_key)
    csv_index = None
    if fmt == "csv":
        header_end, starts, total_rows = csv_partition_offsets(source, partition_rows, mode == "text")
        csv_index = (header_end, starts)
    planned = partition_count(total_rows, partition_rows)
    pending = {p for p in range(planned) if p not in done}

    manifest = {
        "format": manifests.FORMAT,
        "status": "running",
        "job": {**identity, "scorer": scorer, "target": target if scorer == "grpc" else None,
                "job_key": job_key, "columns": _output_columns(k)},
        "input": {"uri": source.uri, "format": fmt, "fingerprint": fingerprint, "rows": total_rows},
        "model": {"version": version, "scorer": scorer,
                  "models_dir": os.path.abspath(models_dir) if scorer == "local" else None,
                  "pinned": model_version is not None},
        "partitions": {"total": planned, "done_before_this_run": len(done)},
        "timings": {"started_at": _now(),
                    "runs": (previous or {}).get("timings", {}).get("runs", 0) + 1},
    }
    manifests.write(output, manifest)

    ray_info: dict = {}
    stats: list[dict] = []
    run_started = time.perf_counter()
    if pending:
        ray_info = start_ray(quiet=quiet_ray)
        stats = _execute(source, output, fmt=fmt, mode=mode, id_name=id_name, partition_rows=partition_rows,
                         pending=pending, csv_index=csv_index, total_rows=total_rows, spec=spec, top_k=k,
                         job_key=job_key, actors=actors, cpus=float(ray_info.get("cpus") or 1),
                         progress=progress, rate_limit=rate_limit)
    run_seconds = time.perf_counter() - run_started

    # The part files are the truth: totals come from their footers, old and new alike.
    finished = done_partitions(output, job_key)
    total_parts = planned
    missing = sorted(set(range(total_parts)) - set(finished))
    if missing:
        raise RuntimeError(f"partitions {missing[:10]} were not written; rerun to finish them")
    rows_total = sum(r["rows"] for r in finished.values())
    error_rows = sum(r["errors"] for r in finished.values())
    rows_this_run = sum(s["rows"] for s in stats)
    steady_rows, steady = steady_window(stats)
    seconds = time.perf_counter() - started
    manifest.update({
        "status": "complete",
        "rows": {"total": rows_total, "scored": rows_total - error_rows, "errors": error_rows,
                 "this_run": rows_this_run},
        "partitions": {"total": total_parts, "done_before_this_run": len(done),
                       "written_this_run": len(stats),
                       "files": [{"name": part_name(p), "rows": r["rows"], "errors": r["errors"]}
                                 for p, r in sorted(finished.items())]},
    })
    if stats:
        manifest["model"]["backends"] = sorted({s["backend"] for s in stats})
    manifest["timings"].update({
        "finished_at": _now(), "seconds": round(seconds, 3), "run_seconds": round(run_seconds, 3),
        "steady_seconds": round(steady, 3), "started_epoch": started_wall,
        "rows_per_second": round(rows_this_run / seconds, 1) if seconds else 0.0,
        "steady_rows_per_second": round(steady_rows / steady, 1) if steady else 0.0,
        "ray": ray_info,
    })
    manifests.write(output, manifest)
    return RayJobSummary(output=output.uri, model_version=version, scorer=scorer, rows_total=rows_total,
                         rows_this_run=rows_this_run, error_rows=error_rows, partitions=total_parts,
                         skipped_partitions=len(done), seconds=seconds, steady_seconds=steady,
                         steady_rows=steady_rows,
                         manifest=manifest)


def steady_window(stats: list[dict]) -> tuple[int, float]:
    """(rows, seconds) of the job once started, comparable with a server that is already up.

    Vectors: from the moment the last scoring actor had its model loaded to the last partition
    written, counting the partitions that began in that window. Text: from the first text
    vectorized (the text step needs no model, so it runs while the actors load) to the last
    partition written, all rows."""
    if not stats:
        return 0, 0.0
    end = max(s["finished"] for s in stats)
    text_starts = [s["vectorize_started"] for s in stats if s.get("vectorize_started") is not None]
    if text_starts:
        begin = min(text_starts)
        return sum(s["rows"] for s in stats), end - begin
    begin = max(s["actor_ready"] for s in stats)
    counted = [s for s in stats if s["started"] >= begin]
    if not counted:  # every partition was taken before the last actor was ready
        begin = min(s["started"] for s in stats)
        counted = stats
    return sum(s["rows"] for s in counted), end - begin


def _output_columns(k: int) -> list[str]:
    from clients.batch.ray_scoring import output_schema

    return output_schema(k).names


def _execute(source, output, *, fmt, mode, id_name, partition_rows, pending, csv_index, total_rows, spec, top_k,
             job_key, actors, cpus, progress, rate_limit) -> list[dict]:
    import ray
    from ray.data import DataContext

    from clients.batch.ray_scoring import vectorize_texts

    context = DataContext.get_current()
    context.enable_progress_bars = progress
    context.enable_operator_progress_bars = progress
    context.print_on_execution_start = False
    # Plain tqdm bars drawn by this process (Ray's own tqdm relays them through worker logs,
    # which a quiet driver does not show).
    context.use_ray_tqdm = False
    datasource = PartitionedInput(source, fmt=fmt, mode=mode, id_column=id_name, partition_rows=partition_rows,
                                  pending=pending, total_rows=total_rows, csv_index=csv_index)
    # Reads are mostly I/O: a fraction of a CPU each, so they never wait for the actors' CPUs.
    ds = ray.data.read_datasource(datasource, num_cpus=0.25,
                                  override_num_blocks=len(pending))
    if mode == "text":
        # The text step is the heavy one: one task per partition per core.
        ds = ds.map_batches(vectorize_texts, batch_size=None, batch_format="pyarrow", num_cpus=1,
                            zero_copy_batch=True)
    pool = actors or _default_actors(mode, cpus)
    if spec.model_files is not None:
        # Once in the object store for all actors (they fetch it by reference), not once per actor.
        spec = dataclasses.replace(spec, model_files=ray.put(spec.model_files))
    ds = ds.map_batches(PartitionWriter, fn_constructor_args=(spec, output, top_k, job_key, rate_limit / pool),
                        batch_size=None,
                        batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=pool),
                        num_cpus=0.5 if mode == "vectors" else 0.25, zero_copy_batch=True)
    stats = []
    for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        stats.extend(batch.to_pylist())
    return stats


def _default_actors(mode: str, cpus: float) -> int:
    # Vectors: scoring and writing are the work, one actor per core. Text: the vectorizer
    # tasks are the work and one scoring actor per 4 cores keeps up with them.
    if mode == "vectors":
        return max(1, int(cpus))
    return max(1, int(cpus) // 4)


def print_summary(summary: RayJobSummary, file=None) -> None:
    file = file or sys.stderr  # looked up at call time (tests and callers may swap it)
    skipped = (f", {summary.skipped_partitions} of {summary.partitions} partitions already done"
               if summary.skipped_partitions else "")
    print(f"batch: {summary.rows_this_run:,} rows in {summary.seconds:.1f} s "
          f"({summary.rows_per_second:,.0f} rows/s; {summary.steady_rows_per_second:,.0f} rows/s once started), "
          f"{summary.error_rows:,} with errors, model version {summary.model_version} ({summary.scorer})"
          f"{skipped}; {summary.rows_total:,} rows in {summary.partitions} partitions under {summary.output}",
          file=file, flush=True)
