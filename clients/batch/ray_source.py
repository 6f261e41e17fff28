"""The input as a Ray Data datasource of fixed partitions: partition i is input rows
[i*P, (i+1)*P), one block each, so a rerun can skip exactly the partitions already written.

- Parquet: one read task per pending partition (they run in parallel on any node); a task
  reads only the row groups that overlap its rows, and only the needed columns.
- CSV: the driver finds where each partition starts with one pass over the bytes
  (csv_partition_offsets: record ends are newlines outside quotes), then one read task per
  pending partition parses only its byte range, in parallel like Parquet.

One read task per partition also keeps partitions apart: Ray merges the blocks one task
yields into bigger ones, never blocks of different tasks.

Every block carries `id` (string), `row` (0-based input row), `partition` and
`partition_rows` (the block's expected size, checked by the writer), plus, for vector input,
the parsed vector and per-row error (rows.slot_vectors), or for text input the raw `text`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from clients.batch import rows as rowlib
from clients.batch.storage import Location
from recommender import schema


def partition_count(total_rows: int, partition_rows: int) -> int:
    return max(1, math.ceil(total_rows / partition_rows)) if total_rows else 0


def csv_options(columns: list[str], mode: str) -> dict:
    return dict(
        # Quoted text may hold newlines. Every column is read as a string: numbers are parsed
        # by rows.slot_vectors, so a bad cell is a row error, not a failed read.
        parse_options=pacsv.ParseOptions(newlines_in_values=mode == "text"),
        convert_options=pacsv.ConvertOptions(include_columns=columns, column_types={c: pa.string() for c in columns},
                                             strings_can_be_null=False),
    )


def csv_partition_offsets(where: Location, partition_rows: int, quoted_newlines: bool,
                          chunk_bytes: int = 16 << 20) -> tuple[int, list[int], int]:
    """(header length, start offset of every partition plus the file's end, data rows).

    A record ends at a newline outside quotes; with RFC 4180 quoting ("" inside a quoted
    field) that is a newline preceded by an even number of quote characters. Empty lines are
    not records (the CSV reader skips them too). numpy over 16 MiB chunks: one read of the
    file, a fraction of a second per 100 MB."""
    ends: list[np.ndarray] = []
    after_cr: list[np.ndarray] = []
    quotes_before = 0
    offset = 0
    previous_byte = -1
    with where.filesystem().open_input_stream(where.path) as stream:
        while chunk := stream.read(chunk_bytes):
            data = np.frombuffer(chunk, dtype=np.uint8)
            newlines = np.flatnonzero(data == 10)
            if quoted_newlines:
                quote_positions = np.flatnonzero(data == 34)
                parity = (quotes_before + np.searchsorted(quote_positions, newlines)) % 2
                newlines = newlines[parity == 0]
                quotes_before += len(quote_positions)
            before = np.where(newlines > 0, data[np.maximum(newlines - 1, 0)], previous_byte)
            ends.append(newlines.astype(np.int64) + offset + 1)
            after_cr.append(before == 13)
            offset += len(chunk)
            previous_byte = int(data[-1])
    record_ends = np.concatenate(ends) if ends else np.zeros(0, np.int64)
    crs = np.concatenate(after_cr) if after_cr else np.zeros(0, bool)
    record_starts = np.concatenate([[0], record_ends[:-1]]).astype(np.int64)
    length = record_ends - record_starts
    real = ~((length == 1) | ((length == 2) & crs))
    starts, finishes = record_starts[real], record_ends[real]
    last_end = int(record_ends[-1]) if len(record_ends) else 0
    if offset > last_end:  # a last record without a newline
        starts = np.append(starts, last_end)
        finishes = np.append(finishes, offset)
    if not len(starts):
        return 0, [offset], 0
    header_end = int(finishes[0])
    data_starts = starts[1:]
    return header_end, data_starts[::partition_rows].tolist() + [offset], int(len(data_starts))


def csv_columns(where: Location) -> list[str]:
    with where.filesystem().open_input_stream(where.path) as stream:
        return list(pacsv.open_csv(stream, read_options=pacsv.ReadOptions(block_size=1 << 16)).schema.names)


def parquet_file(where: Location) -> pq.ParquetFile:
    return pq.ParquetFile(where.filesystem().open_input_file(where.path))


def _block(raw: pa.Table, *, mode: str, id_column: str | None, first_row: int, partition: int) -> pa.Table:
    """One partition's block (see the module docstring)."""
    n = raw.num_rows
    base = pa.table({
        "id": rowlib.ids_as_strings(raw.column(id_column) if id_column else None, first_row, n),
        "row": pa.array(np.arange(first_row, first_row + n, dtype=np.int64)),
        "partition": pa.array(np.full(n, partition, dtype=np.int32)),
        "partition_rows": pa.array(np.full(n, n, dtype=np.int32)),
    })
    if mode == "text":
        text = raw.column(rowlib.TEXT_COLUMN)
        if not pa.types.is_string(text.type):
            text = text.cast(pa.string())
        return base.append_column(rowlib.TEXT_COLUMN, text)
    vectors, errors = rowlib.slot_vectors(raw)
    return rowlib.with_vectors(base, vectors, errors, None)


class PartitionedInput(Datasource):
    """A CSV or Parquet file read in fixed partitions; `pending` are the partitions to emit
    (None: all)."""

    def __init__(self, where: Location, *, fmt: str, mode: str, id_column: str | None, partition_rows: int,
                 pending: set[int] | None, total_rows: int, csv_index: tuple[int, list[int]] | None = None):
        super().__init__()
        self.where = where
        self.fmt = fmt
        self.mode = mode
        self.id_column = id_column
        self.partition_rows = partition_rows
        self.pending = pending
        self.total_rows = total_rows
        self.csv_index = csv_index  # (header bytes, byte offset where each partition starts + the end)
        needed = [id_column] if id_column else []
        needed += [rowlib.TEXT_COLUMN] if mode == "text" else list(schema.SLOT_NAMES)
        self.columns = needed

    def get_name(self) -> str:
        return f"Read{self.fmt.upper()}Partitions"

    def estimate_inmemory_data_size(self) -> int | None:
        return None

    # ------------------------------------------------------------------ parquet

    def _parquet_partition(self, partition: int) -> Iterator[pa.Table]:
        source = parquet_file(self.where)
        meta = source.metadata
        start = partition * self.partition_rows
        end = min(start + self.partition_rows, meta.num_rows)
        groups, offset, group_start = [], None, 0
        for index in range(meta.num_row_groups):
            group_rows = meta.row_group(index).num_rows
            if group_start < end and group_start + group_rows > start:
                groups.append(index)
                if offset is None:
                    offset = start - group_start
            group_start += group_rows
        table = source.read_row_groups(groups, columns=self.columns).slice(offset or 0, end - start)
        yield _block(table, mode=self.mode, id_column=self.id_column, first_row=start, partition=partition)

    # ------------------------------------------------------------------ csv

    def _csv_partition(self, partition: int) -> Iterator[pa.Table]:
        header_end, starts = self.csv_index
        begin = starts[partition]
        end = starts[partition + 1]
        with self.where.filesystem().open_input_file(self.where.path) as f:
            header = f.read_at(header_end, 0)
            body = f.read_at(end - begin, begin)
        table = pacsv.read_csv(pa.BufferReader(header + body), **csv_options(self.columns, self.mode))
        yield _block(table, mode=self.mode, id_column=self.id_column, first_row=partition * self.partition_rows,
                     partition=partition)

    # ------------------------------------------------------------------ ray

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                       data_context=None) -> list[ReadTask]:
        read = self._csv_partition if self.fmt == "csv" else self._parquet_partition
        total = self.total_rows or 0
        tasks = []
        for partition in range(partition_count(total, self.partition_rows)):
            if self.pending is not None and partition not in self.pending:
                continue
            rows = min(self.partition_rows, total - partition * self.partition_rows)
            meta = BlockMetadata(num_rows=rows, size_bytes=None, input_files=[self.where.uri], exec_stats=None)
            tasks.append(ReadTask(lambda p=partition: read(p), meta))
        return tasks
