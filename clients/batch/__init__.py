"""The batch recommendation job: customers in (CSV or Parquet), top-k products out.

Two engines behind one command (`python -m clients.batch`, see cli.py):
- grpc (default): one process streams chunks through the inference server or gateway and
  writes one CSV (grpc_job.py);
- ray: a Ray Data job over local or s3:// files, scoring in actor pools that hold a pinned
  model version, Parquet partitions plus a manifest out (ray_job.py).

The gRPC engine's names stay importable from here (`from clients import batch; batch.run_job`).
"""

from clients.batch.cli import build_parser, main
from clients.batch.grpc_job import (
    ERROR_COLUMN,
    PLACEHOLDER_TEXT,
    PLACEHOLDER_VECTOR,
    ROW_COLUMN,
    TEXT_COLUMN,
    Chunk,
    JobSummary,
    count_rows,
    header_for,
    input_columns,
    make_chunk,
    prepare_resume,
    progress_path,
    read_chunks,
    render_chunk,
    run_job,
)
from clients.batch.rows import InputError

__all__ = [
    "ERROR_COLUMN", "PLACEHOLDER_TEXT", "PLACEHOLDER_VECTOR", "ROW_COLUMN", "TEXT_COLUMN", "Chunk", "InputError",
    "JobSummary", "build_parser", "count_rows", "header_for", "input_columns", "main", "make_chunk",
    "prepare_resume", "progress_path", "read_chunks", "render_chunk", "run_job",
]
