"""The Ray steps after the read: texts -> vectors (tasks), vectors -> top-k -> one Parquet
partition file (an actor pool).

Each actor of the pool holds ONE pinned model version for its whole life:
- scorer "local": the version's files are shipped from the driver (so cluster nodes need no
  shared model folder), written to a temp folder on the actor's node and loaded with
  inference/loader.py, the inference server's own loader (same TFLite backend, same
  warm-up checks), so scores equal the server's. TensorFlow is imported only here, inside the
  actor process; the driver never imports it.
- scorer "grpc": a channel to the inference fleet; every call pins `model_version`, so a
  version published mid-job cannot mix into the output.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from clients.batch import rows as rowlib
from clients.batch.storage import Location, write_parquet_atomically
from recommender import schema

PART_PREFIX = "part-"
PART_SUFFIX = ".parquet"
METADATA_KEY = b"recommender.batch"
# Rows per model call: a power of two, so the TFLite runner never pads (it allocates one
# interpreter per power-of-two size).
SCORE_CHUNK_ROWS = 8192
VECTORIZE_STARTED = "vectorize_started"  # when the text step began on a partition (for timings)


def part_name(partition: int) -> str:
    return f"{PART_PREFIX}{partition:05d}{PART_SUFFIX}"


def partition_of(name: str) -> int | None:
    if name.startswith(PART_PREFIX) and name.endswith(PART_SUFFIX):
        digits = name[len(PART_PREFIX):-len(PART_SUFFIX)]
        if digits.isdigit():
            return int(digits)
    return None


def output_schema(top_k: int) -> pa.Schema:
    fields = [pa.field("id", pa.string()), pa.field("row", pa.int64())]
    fields += [pa.field(f"product_{i}", pa.string()) for i in range(1, top_k + 1)]
    fields += [pa.field(f"score_{i}", pa.float32()) for i in range(1, top_k + 1)]
    fields += [pa.field("model_version", pa.int64()), pa.field("vectorizer", pa.string()),
               pa.field(rowlib.ERROR_COLUMN, pa.string())]
    return pa.schema(fields)


# --------------------------------------------------------------------------- texts


_VECTORIZER = None


def _vectorizer():
    global _VECTORIZER
    if _VECTORIZER is None:
        # The gateway's public builder: the same local vectorizer the gateway serves with.
        from gateway.vectorizers.chain import build_vectorizer

        _VECTORIZER = build_vectorizer("local")
    return _VECTORIZER


def vectorize_texts(block: pa.Table) -> pa.Table:
    """Ray map_batches step: the `text` column -> vector columns, error, vectorizer."""
    started = time.time()
    vectorizer = _vectorizer()
    texts = block.column(rowlib.TEXT_COLUMN).to_pylist()
    vectors, errors, names = rowlib.text_vectors(texts, vectorizer.vectorize)
    base = block.drop_columns([rowlib.TEXT_COLUMN])
    out = rowlib.with_vectors(base, vectors, errors, names)
    return out.append_column(VECTORIZE_STARTED, pa.array([started] * block.num_rows, pa.float64()))


# --------------------------------------------------------------------------- scorers


@dataclass(frozen=True)
class ScorerSpec:
    """What an actor needs to build its scorer; picklable, no secrets in logs."""

    kind: str  # "local" | "grpc"
    model_version: int
    model_files: object = None  # local: {relative path: bytes} of the version folder, or its ray.put reference
    backend: str = "auto"
    target: str | None = None  # grpc
    tls: bool = False
    timeout: float = 30.0
    token: str | None = None
    ca_path: str | None = None


class LocalModelScorer:
    def __init__(self, spec: ScorerSpec):
        from inference.loader import load_version  # TensorFlow: in the actor process only

        files = spec.model_files
        if files is not None and not isinstance(files, dict):  # an object-store reference
            import ray

            files = ray.get(files)
        self.folder = tempfile.mkdtemp(prefix=f"batch-model-v{spec.model_version}-")
        try:
            for relative, data in (files or {}).items():
                path = os.path.join(self.folder, relative)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as f:
                    f.write(data)
            self.model = load_version(self.folder, spec.model_version, backend=spec.backend)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)  # loaded into memory; the copy is not needed
        self.catalog = self.model.product_ids
        self.backend = self.model.backend

    def score(self, matrix: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
        from inference.scoring import score_batch  # the server's scoring: same validation and ranking

        rows = matrix.shape[0]
        indices = np.full((rows, top_k), -1, dtype=np.int32)
        scores = np.zeros((rows, top_k), dtype=np.float32)
        errors: dict[int, str] = {}
        for start in range(0, rows, SCORE_CHUNK_ROWS):
            chunk = np.ascontiguousarray(matrix[start:start + SCORE_CHUNK_ROWS])
            result = score_batch(self.model.predict, chunk, top_k)
            indices[start:start + len(chunk)] = result.indices
            scores[start:start + len(chunk)] = result.scores
            for error in result.errors:
                errors[start + error.row] = str(error)
        return indices, scores, errors


class GrpcScorer:
    def __init__(self, spec: ScorerSpec):
        from clients.batch.grpc_options import make_client

        self.client = make_client(spec.target, tls=spec.tls, timeout=spec.timeout, token=spec.token,
                                  ca_path=spec.ca_path)
        self.version = spec.model_version
        self.catalog: tuple[str, ...] = ()
        self.backend = "grpc"

    def score(self, matrix: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
        rows = matrix.shape[0]
        indices = np.full((rows, top_k), -1, dtype=np.int32)
        scores = np.zeros((rows, top_k), dtype=np.float32)
        errors: dict[int, str] = {}
        for start in range(0, rows, schema.MAX_BATCH_ROWS):
            chunk = matrix[start:start + schema.MAX_BATCH_ROWS]
            reply = self.client.recommend_batch(chunk, top_k=top_k, model_version=self.version)
            if reply.model_version != self.version:
                raise RuntimeError(f"server scored with version {reply.model_version}, "
                                   f"the job is pinned to {self.version}")
            self.catalog = reply.catalog
            indices[start:start + len(chunk)] = np.asarray(reply.indices, dtype=np.int32).reshape(len(chunk), top_k)
            scores[start:start + len(chunk)] = np.asarray(reply.scores, dtype=np.float32).reshape(len(chunk), top_k)
            for row, message in reply.errors.items():
                errors[start + row] = message
        return indices, scores, errors


# --------------------------------------------------------------------------- the writer actor


class PartitionWriter:
    """Ray actor (map_batches with an actor pool): one block = one partition in, the scored
    partition written atomically to OUT_DIR/part-NNNNN.parquet, one stats row out."""

    def __init__(self, spec: ScorerSpec, output: Location, top_k: int, job_key: str,
                 rows_per_second: float = 0.0):
        self.rows_per_second = rows_per_second  # this actor's share of --rate-limit (0: no limit)
        self.scorer = LocalModelScorer(spec) if spec.kind == "local" else GrpcScorer(spec)
        self.ready_at = time.time()  # model loaded: the job's timings leave the start-up out
        self.version = spec.model_version
        self.output = output
        self.top_k = top_k
        self.job_key = job_key
        self.schema = output_schema(top_k)

    def __call__(self, block: pa.Table) -> pa.Table:
        started = time.time()
        partitions = pc.unique(block.column("partition")).to_pylist()
        expected = block.column("partition_rows")[0].as_py() if block.num_rows else 0
        if len(partitions) != 1 or block.num_rows != expected:
            # The pipeline keeps one partition per block; anything else would write a partial
            # or mixed partition under a final name, so fail loudly instead.
            raise RuntimeError(f"block holds partitions {partitions[:5]} with {block.num_rows} rows, "
                               f"expected one partition of {expected}")
        partition = partitions[0]
        table = self.scored_table(block)
        errors = table.num_rows - table.column(rowlib.ERROR_COLUMN).null_count
        finished = time.time()
        record = {"partition": partition, "rows": table.num_rows, "errors": errors, "job": self.job_key,
                  "model_version": self.version, "started": started, "finished": finished}
        write_parquet_atomically(self.output.child(part_name(partition)), table,
                                 {METADATA_KEY: json.dumps(record).encode()})
        if self.rows_per_second > 0:  # pace the pool so it shares a cluster or fleet politely
            time.sleep(max(0.0, table.num_rows / self.rows_per_second - (time.time() - started)))
        text_started = (block.column(VECTORIZE_STARTED)[0].as_py() if VECTORIZE_STARTED in block.column_names
                        else None)
        return pa.table({"partition": [partition], "rows": [table.num_rows], "errors": [errors],
                         "started": [started], "finished": [time.time()], "pid": [os.getpid()],
                         "actor_ready": [self.ready_at], "vectorize_started": pa.array([text_started], pa.float64()),
                         "backend": [self.scorer.backend]})

    def scored_table(self, block: pa.Table) -> pa.Table:
        k = self.top_k
        rows = block.num_rows
        matrix = np.column_stack([block.column(name).to_numpy() for name in rowlib.FEATURE_COLUMNS]
                                 ).astype(np.float32, copy=False) if rows else np.zeros((0, 6), np.float32)
        error_column = block.column(rowlib.ERROR_COLUMN)
        valid = pc.is_null(error_column).to_numpy(zero_copy_only=False)
        indices = np.full((rows, k), -1, dtype=np.int32)
        scores = np.zeros((rows, k), dtype=np.float32)
        if valid.any():
            positions = np.flatnonzero(valid)
            all_valid = bool(valid.all())
            got_indices, got_scores, server_errors = self.scorer.score(
                matrix if all_valid else np.ascontiguousarray(matrix[valid]), k)
            if all_valid:
                indices, scores = got_indices, got_scores
            else:
                indices[valid], scores[valid] = got_indices, got_scores
            if server_errors:  # rare: the scorer refused a row the local checks passed
                messages = error_column.to_pylist()
                for local, message in server_errors.items():
                    messages[positions[local]] = message
                    indices[positions[local]] = -1
                error_column = pa.array(messages, pa.string())
        failed = ~pc.is_null(error_column).to_numpy(zero_copy_only=False)
        catalog = pa.array(list(self.scorer.catalog), pa.string())
        columns: dict[str, pa.Array] = {"id": block.column("id"), "row": block.column("row")}
        for i in range(k):
            picked = np.where(failed, 0, indices[:, i])
            # take() with a null index gives a null product for a failed row.
            columns[f"product_{i + 1}"] = pc.take(catalog, pa.array(picked, mask=failed)) if len(catalog) \
                else pa.nulls(rows, pa.string())
        for i in range(k):
            columns[f"score_{i + 1}"] = pa.array(scores[:, i], pa.float32(), mask=failed)
        columns["model_version"] = pa.array(np.full(rows, self.version, dtype=np.int64))
        vectorizer = block.column("vectorizer")
        columns["vectorizer"] = vectorizer
        columns[rowlib.ERROR_COLUMN] = error_column
        return pa.table(columns, schema=self.schema)
