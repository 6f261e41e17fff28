"""Input rows -> customer vectors and per-row errors, for the Ray engine (plain pyarrow/numpy,
no Ray, no TensorFlow: unit-testable and shared by the read and vectorize steps).

A bad row never stops a job: it gets a message in `error` and placeholder zeros in its
vector, and the scorer skips it. Checks are the contract's (recommender.schema) applied to
float32 values, exactly as the inference server sees a vector after the float32 wire.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recommender import schema

TEXT_COLUMN = "text"
DEFAULT_ID_COLUMN = "id"
ERROR_COLUMN = "error"
FEATURE_COLUMNS = tuple(f"f_{name}" for name in schema.SLOT_NAMES)  # the vector, between steps


class InputError(Exception):
    """The input cannot be used as asked (missing columns, unknown format, ...)."""


def input_mode(columns: list[str], where: str) -> str:
    """'vectors' when all six slot columns are there, else 'text' (needs a text column)."""
    if all(name in columns for name in schema.SLOT_NAMES):
        return "vectors"
    if TEXT_COLUMN in columns:
        return "text"
    missing = [n for n in schema.SLOT_NAMES if n not in columns]
    raise InputError(f"{where} needs the slot columns {', '.join(schema.SLOT_NAMES)} "
                     f"(missing {', '.join(missing)}) or a '{TEXT_COLUMN}' column; it has {', '.join(columns)}")


def resolve_id_column(columns: list[str], requested: str | None, where: str) -> str | None:
    """The input column whose values become the output `id` (None: the row position)."""
    if requested is not None:
        if requested not in columns:
            raise InputError(f"id column {requested!r} is not in {where} (columns: {', '.join(columns)})")
        return requested
    return DEFAULT_ID_COLUMN if DEFAULT_ID_COLUMN in columns else None


def ids_as_strings(column: pa.ChunkedArray | pa.Array | None, first_row: int, rows: int) -> pa.Array:
    """Output ids are strings (a CSV id like 007 stays 007); no id column: the 0-based row."""
    if column is None:
        return pc.cast(pa.array(np.arange(first_row, first_row + rows, dtype=np.int64)), pa.string())
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        column = pc.cast(column, pa.string())
    return pc.fill_null(column, "").cast(pa.string())


def _column_floats(column: pa.ChunkedArray, name: str, errors: dict[int, str]) -> np.ndarray:
    """float64 values of one slot column; NaN where a cell is empty or not a number, with the
    reason put in `errors` (first problem of a row wins)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        values = pc.cast(column, pa.float64(), safe=False).to_numpy(zero_copy_only=False).astype(np.float64)
        for pos in np.flatnonzero(np.isnan(values)).tolist():
            errors.setdefault(pos, f"{name} is empty (write 0 for not stated)")
        return values
    text = column if pa.types.is_string(kind) else pc.cast(column, pa.string())
    try:  # fast path: every cell parses (Arrow's C++ parser)
        values = pc.cast(pc.utf8_trim_whitespace(text), pa.float64()).to_numpy(zero_copy_only=False)
        values = np.asarray(values, dtype=np.float64)
        for pos in np.flatnonzero(np.isnan(values)).tolist():
            errors.setdefault(pos, f"{name} is empty (write 0 for not stated)")
        return values
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    cells = text.to_pylist()
    values = np.empty(len(cells), dtype=np.float64)
    for pos, raw in enumerate(cells):
        cell = "" if raw is None else raw.strip()
        try:
            values[pos] = float(cell) if cell else np.nan
        except ValueError:
            values[pos] = np.nan
        if np.isnan(values[pos]):
            errors.setdefault(pos, f"{name} is empty (write 0 for not stated)" if not cell
                              else f"{name} must be a number, got {cell[:40]!r}")
    return values


def slot_vectors(table: pa.Table) -> tuple[np.ndarray, dict[int, str]]:
    """(N, 6) float32 vectors from the six slot columns and the errors (row -> message).
    Rows with an error are zeros (a placeholder the scorer never sees)."""
    rows = table.num_rows
    errors: dict[int, str] = {}
    matrix = np.empty((rows, schema.FEATURE_COUNT), dtype=np.float64)
    for slot in schema.SLOTS:
        matrix[:, slot.index] = _column_floats(table.column(slot.name), slot.name, errors)
    with np.errstate(over="ignore", invalid="ignore"):
        vectors = matrix.astype(np.float32)  # what the wire (proto float) would carry
    check_vectors(vectors, errors, matrix)
    return vectors, errors


def check_vectors(vectors: np.ndarray, errors: dict[int, str], exact: np.ndarray | None = None) -> None:
    """Contract check of float32 vectors: messages like the server's
    ("features[2] budget must be between 0 and 1e9 KRW, got -5"); bad rows become zeros.
    `exact` (the float64 values read) only words the message, so a huge digit string is
    reported as the number written rather than as float32's inf."""
    for pos in np.flatnonzero(schema.invalid_rows(vectors)).tolist():
        if pos in errors:
            continue
        for candidate in ((exact[pos],) if exact is not None else ()) + (vectors[pos],):
            try:
                schema.validate_features(candidate)
            except schema.InvalidFeatures as exc:
                errors[pos] = str(exc)
                break
    if errors:
        vectors[list(errors)] = 0.0


def text_vectors(texts: list[str | None], vectorize) -> tuple[np.ndarray, dict[int, str], list[str | None]]:
    """Vectorize texts with `vectorize(text) -> result with .features and .vectorizer`.
    Returns vectors, errors and the vectorizer name per row (None for rows that failed)."""
    rows = len(texts)
    vectors = np.zeros((rows, schema.FEATURE_COUNT), dtype=np.float32)
    errors: dict[int, str] = {}
    names: list[str | None] = [None] * rows
    for pos, raw in enumerate(texts):
        try:
            text = schema.validate_text("" if raw is None else raw)
        except schema.InvalidText as exc:
            errors[pos] = f"text: {exc}"
            continue
        try:
            result = vectorize(text)
        except Exception as exc:  # one strange text must not stop a million-row job
            errors[pos] = f"text: could not vectorize: {type(exc).__name__}: {str(exc)[:200]}"
            continue
        vectors[pos] = np.asarray(result.features, dtype=np.float32)
        names[pos] = result.vectorizer
    check_vectors(vectors, errors)
    for pos in errors:
        names[pos] = None
    return vectors, errors, names


def with_vectors(base: pa.Table, vectors: np.ndarray, errors: dict[int, str],
                 vectorizer: list[str | None] | None) -> pa.Table:
    """`base` (id, row, partition columns) plus the vector columns, error and vectorizer."""
    columns = {name: base.column(name) for name in base.column_names}
    for index, name in enumerate(FEATURE_COLUMNS):
        columns[name] = pa.array(vectors[:, index], pa.float32())
    rows = base.num_rows
    messages = None
    if errors:
        messages = np.full(rows, None, dtype=object)
        messages[list(errors)] = list(errors.values())
    columns[ERROR_COLUMN] = pa.array(messages, pa.string()) if messages is not None else pa.nulls(rows, pa.string())
    columns["vectorizer"] = (pa.array(vectorizer, pa.string()) if vectorizer is not None
                             else pa.nulls(rows, pa.string()))
    return pa.table(columns)
