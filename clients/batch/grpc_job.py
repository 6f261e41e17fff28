"""The gRPC engine of the batch job: customers in (CSV or Parquet), top-k products out (CSV).

    python -m clients.batch [--engine grpc] --target 127.0.0.1:8500 --input customers.csv --output recs.csv \
        [--id-column id] [--top-k 3] [--chunk-rows 1000] [--max-in-flight 4] [--resume]

The input has either the six slot columns (age, gender, budget, interest, purpose, season)
or a `text` column (text needs the gateway). The output has the id column (or `row`, the
0-based input position, when the input has no id column), product_1..k, score_1..k and
`error`: a row with bad values gets its message there instead of stopping the job.

Chunks go through the RecommendStream RPC; a generator feeds the stream and blocks on a
semaphore, so at most --max-in-flight chunks are unanswered at any time and memory stays
flat for any input size. Output is written in input order and flushed chunk by chunk; after
each flush a small progress file records (rows done, output bytes). A killed job run again
with --resume truncates the output to the last recorded chunk and skips that many input
rows, so no row is lost or written twice.
"""

from __future__ import annotations

import collections
import csv
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pandas as pd

from clients.batch.grpc_options import make_client
from clients.batch.rows import InputError
from clients.client import RecommenderError
from recommender import schema
from recommender.v1 import recommend_pb2

TEXT_COLUMN = "text"
ROW_COLUMN = "row"
ERROR_COLUMN = "error"
# Sent in place of a row that failed local checks, so every request row still maps 1:1 to
# an input row; the local error replaces whatever the server answers for it.
PLACEHOLDER_VECTOR = (0.0,) * schema.FEATURE_COUNT
PLACEHOLDER_TEXT = "-"


@dataclass
class Chunk:
    ids: list[str]
    request: recommend_pb2.RecommendBatchRequest
    local_errors: dict[int, str]  # position in chunk -> message


@dataclass(frozen=True)
class JobSummary:
    output: Path
    rows_total: int  # rows in the output when the job ended
    rows_this_run: int
    skipped_on_resume: int
    error_rows: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows_this_run / self.seconds if self.seconds > 0 else 0.0


# --------------------------------------------------------------------------- input


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def input_columns(path: Path) -> list[str]:
    if _is_parquet(path):
        import pyarrow.parquet as pq

        return list(pq.ParquetFile(path).schema_arrow.names)
    return list(pd.read_csv(path, nrows=0).columns)


def count_rows(path: Path) -> int | None:
    """Data rows of the input, for the progress bar (cheap: Parquet metadata or a newline count)."""
    if _is_parquet(path):
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    lines = 0
    last = b"\n"
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    if last != b"\n":
        lines += 1
    return max(lines - 1, 0)


def read_chunks(path: Path, columns: list[str], chunk_rows: int, skip: int,
                dtypes: dict[str, type]) -> Iterator[pd.DataFrame]:
    """The input from row `skip` on, `chunk_rows` rows at a time, only `columns`."""
    if _is_parquet(path):
        import pyarrow.parquet as pq

        to_skip = skip
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows, columns=columns):
            if to_skip >= batch.num_rows:
                to_skip -= batch.num_rows
                continue
            if to_skip:
                batch, to_skip = batch.slice(to_skip), 0
            frame = batch.to_pandas()
            for name, kind in dtypes.items():
                if kind is str:
                    frame[name] = frame[name].map(lambda v: "" if v is None else str(v))
            yield frame
        return
    reader = pd.read_csv(
        path, usecols=columns, chunksize=chunk_rows, dtype=dtypes,
        skiprows=range(1, skip + 1) if skip else None,
        # Only an empty cell is missing; "NA" or "None" in a text column is text.
        keep_default_na=False, na_values={c: [""] for c in columns if dtypes.get(c) is not str},
    )
    yield from reader


# --------------------------------------------------------------------------- chunks


def _number_errors(frame: pd.DataFrame) -> tuple[np.ndarray, dict[int, str]]:
    """(N, 6) float matrix of the slot columns and per-row messages for cells that are not
    numbers (those rows get the placeholder vector)."""
    matrix = np.empty((len(frame), schema.FEATURE_COUNT), dtype=np.float64)
    errors: dict[int, str] = {}
    for slot in schema.SLOTS:
        column = frame[slot.name]
        if column.dtype.kind in "biuf":
            values = column.to_numpy(dtype=np.float64)
            for pos in np.flatnonzero(np.isnan(values)):
                errors.setdefault(int(pos), f"{slot.name} is empty (write 0 for not stated)")
        else:  # a column with a non-numeric cell somewhere in this chunk
            values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
            for pos in np.flatnonzero(np.isnan(values)):
                raw = column.iloc[pos]
                is_blank = raw is None or (isinstance(raw, float) and np.isnan(raw)) or not str(raw).strip()
                message = (f"{slot.name} is empty (write 0 for not stated)" if is_blank
                           else f"{slot.name} must be a number, got {str(raw)[:40]!r}")
                errors.setdefault(int(pos), message)
        matrix[:, slot.index] = values
    for pos in errors:
        matrix[pos] = PLACEHOLDER_VECTOR
    return matrix, errors


def make_chunk(frame: pd.DataFrame, *, id_column: str | None, first_row: int, use_text: bool,
               top_k: int) -> Chunk:
    if id_column:
        ids = [str(v) for v in frame[id_column].tolist()]
    else:
        ids = [str(first_row + i) for i in range(len(frame))]
    request = recommend_pb2.RecommendBatchRequest(top_k=top_k)
    errors: dict[int, str] = {}
    if use_text:
        texts = []
        for pos, value in enumerate(frame[TEXT_COLUMN].tolist()):
            try:
                texts.append(schema.validate_text("" if value is None else str(value)))
            except schema.InvalidText as exc:
                errors[pos] = f"text: {exc}"
                texts.append(PLACEHOLDER_TEXT)
        request.texts.extend(texts)
    else:
        matrix, errors = _number_errors(frame)
        request.features.extend(matrix.ravel().tolist())
    return Chunk(ids=ids, request=request, local_errors=errors)


def _clean(message: str) -> str:
    # One output line per row is what makes resume by line count safe.
    return " ".join(message.split())


def _csv_field(value: str) -> str:
    if any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def render_chunk(chunk: Chunk, reply, top_k: int) -> tuple[str, int]:
    """CSV text of one answered chunk, and how many of its rows are errors."""
    catalog = [_csv_field(p) for p in reply.catalog] + [""]  # index -1 -> ""
    # The client gives rows as tuples (or arrays): one numpy conversion for the whole chunk.
    indices = np.asarray(reply.indices, dtype=np.intp).reshape(len(chunk.ids), top_k)
    names = np.asarray(catalog, dtype=object)[indices].tolist()
    scores = np.asarray(reply.scores, dtype=np.float32).reshape(len(chunk.ids), top_k).tolist()
    errors = {**reply.errors, **chunk.local_errors}  # a local check explains a row best
    # One %-format per row: this loop is most of the job's client-side time.
    line = "%s" + ",%s" * top_k + ",%.6f" * top_k + ",\n"
    failed = "%s" + "," * (2 * top_k) + ",%s\n"
    ids = chunk.ids
    joined = "\x00".join(ids)
    if any(c in joined for c in ',"\r\n'):  # one scan of the chunk instead of one per id
        ids = [_csv_field(i) for i in ids]
    out = []
    for pos, row_id in enumerate(ids):
        error = errors.get(pos)
        if error:
            out.append(failed % (row_id, _csv_field(_clean(error))))
        else:
            out.append(line % (row_id, *names[pos], *scores[pos]))
    return "".join(out), len(errors)


# --------------------------------------------------------------------------- resume


def progress_path(output: Path) -> Path:
    return output.with_name(output.name + ".progress.json")


def header_for(id_name: str, top_k: int) -> list[str]:
    return ([id_name] + [f"product_{i}" for i in range(1, top_k + 1)]
            + [f"score_{i}" for i in range(1, top_k + 1)] + [ERROR_COLUMN])


def _write_progress(output: Path, rows_done: int, size: int, header: list[str]) -> None:
    target = progress_path(output)
    staging = target.with_name(target.name + ".tmp")
    staging.write_text(json.dumps({"rows_done": rows_done, "bytes": size, "header": header}))
    os.replace(staging, target)  # atomic: a kill leaves the old or the new record, never half


def prepare_resume(output: Path, header: list[str]) -> int:
    """Make `output` end after its last complete chunk and return how many rows it holds.

    The progress file is authoritative (a chunk written but not yet recorded is dropped and
    redone). Without one, complete lines are counted and a partial last line is cut."""
    if not output.exists() or output.stat().st_size == 0:
        return -1
    first = output.open(encoding="utf-8", newline="").readline()
    if next(csv.reader([first]), []) != header:
        raise InputError(f"{output} has columns {first.strip()!r}, expected {','.join(header)!r}: "
                         "was it written with another --top-k or id column? Remove it or drop --resume")
    record = progress_path(output)
    if record.exists():
        progress = json.loads(record.read_text())
        size, rows = int(progress["bytes"]), int(progress["rows_done"])
    else:
        data = output.read_bytes()
        size = data.rfind(b"\n") + 1
        rows = data.count(b"\n", 0, size) - 1
    with output.open("r+b") as f:
        f.truncate(size)
    return rows


# --------------------------------------------------------------------------- the job


def run_job(target: str, input_path: str | os.PathLike, output_path: str | os.PathLike, *,
            id_column: str | None = None, top_k: int = 3, chunk_rows: int = 1000, max_in_flight: int = 4,
            resume: bool = False, timeout: float = 5.0, tls: bool = False, progress: bool = True,
            rate_limit: float = 0.0, token: str | None = None, ca_path: str | None = None) -> JobSummary:
    """Run the job; `id_column=None` uses `id` when present, else the row position.
    `rate_limit` > 0 caps the rows sent per second (to share a server politely)."""
    input_path, output = Path(input_path), Path(output_path)
    if not input_path.is_file():
        raise InputError(f"input {input_path} does not exist")
    k = schema.resolve_top_k(top_k)
    if chunk_rows < 1 or max_in_flight < 1:
        raise InputError("--chunk-rows and --max-in-flight must be at least 1")
    columns = input_columns(input_path)
    use_text = not all(name in columns for name in schema.SLOT_NAMES)
    if use_text and TEXT_COLUMN not in columns:
        missing = [n for n in schema.SLOT_NAMES if n not in columns]
        raise InputError(f"{input_path} needs the slot columns {', '.join(schema.SLOT_NAMES)} "
                         f"(missing {', '.join(missing)}) or a '{TEXT_COLUMN}' column; it has {', '.join(columns)}")
    if id_column is not None and id_column not in columns:
        raise InputError(f"id column {id_column!r} is not in {input_path} (columns: {', '.join(columns)})")
    if id_column is None and "id" in columns:
        id_column = "id"
    chunk_rows = min(chunk_rows, schema.MAX_BATCH_TEXTS if use_text else schema.MAX_BATCH_ROWS)
    needed = ([id_column] if id_column else []) + ([TEXT_COLUMN] if use_text else list(schema.SLOT_NAMES))
    dtypes = {name: str for name in needed if name in (id_column, TEXT_COLUMN)}
    header = header_for(id_column or ROW_COLUMN, k)

    done = prepare_resume(output, header) if resume else -1
    fresh = done < 0
    done = max(done, 0)
    total = count_rows(input_path)

    stop = threading.Event()
    slots = threading.Semaphore(max_in_flight)
    pending: collections.deque[Chunk] = collections.deque()
    reader_failure: list[BaseException] = []

    def requests() -> Iterator[recommend_pb2.RecommendBatchRequest]:
        # Runs on gRPC's sending thread; blocking here is what bounds the in-flight chunks.
        row = done
        sent_since_start = 0
        try:
            for frame in read_chunks(input_path, needed, chunk_rows, done, dtypes):
                if not len(frame):
                    continue
                chunk = make_chunk(frame, id_column=id_column, first_row=row, use_text=use_text, top_k=k)
                row += len(frame)
                if rate_limit > 0:  # sleep until this chunk's share of the time budget is due
                    delay = started + sent_since_start / rate_limit - time.perf_counter()
                    if delay > 0 and stop.wait(delay):
                        return
                sent_since_start += len(frame)
                while not slots.acquire(timeout=0.2):
                    if stop.is_set():
                        return
                pending.append(chunk)  # before the yield: the reply can only come after it
                yield chunk.request
        except Exception as exc:  # surfaced by the main thread instead of a bare CANCELLED
            reader_failure.append(exc)
            raise

    started = time.perf_counter()
    written = errors = 0
    from tqdm import tqdm  # imported late: only the job itself needs it

    bar = tqdm(total=total, initial=min(done, total or done), unit="rows", unit_scale=True,
               dynamic_ncols=True, file=sys.stderr, disable=not progress, desc="recommend")
    mode = "w" if fresh else "a"
    try:
        with make_client(target, timeout=timeout, tls=tls, token=token, ca_path=ca_path) as client, \
                output.open(mode, encoding="utf-8", newline="") as out:
            if fresh:
                out.write(",".join(header) + "\n")
                out.flush()
                _write_progress(output, 0, out.tell(), header)
            try:
                for reply in client.recommend_stream(requests(), top_k=k):
                    chunk = pending.popleft()
                    if reply.rows != len(chunk.ids):
                        raise RecommenderError(
                            grpc.StatusCode.INTERNAL,
                            f"server answered {reply.rows} rows for a chunk of {len(chunk.ids)}")
                    text, bad = render_chunk(chunk, reply, k)
                    out.write(text)
                    out.flush()
                    written += len(chunk.ids)
                    errors += bad
                    _write_progress(output, done + written, out.tell(), header)
                    slots.release()
                    bar.update(len(chunk.ids))
            except RecommenderError:
                if reader_failure:
                    raise reader_failure[0] from None
                raise
    finally:
        stop.set()
        bar.close()
    progress_path(output).unlink(missing_ok=True)  # complete: the output alone is the record
    return JobSummary(output=output, rows_total=done + written, rows_this_run=written,
                      skipped_on_resume=0 if fresh else done, error_rows=errors,
                      seconds=time.perf_counter() - started)


