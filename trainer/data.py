"""Loading purchase data (CSV, or Parquet via pyarrow) and checking it against the contract.

Everything here is pandas/numpy only, so a bad file is rejected before TensorFlow is even
imported. Every problem raises DataError with a one-line message that says what to fix; row
numbers count data rows from 1 (the CSV header is not a row).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recommender.schema import DEFAULT_CATALOG, SLOT_NAMES, Catalog, invalid_rows, validate_features
from trainer.generate import LABEL_COLUMN, is_generated, sha256_of

# Below this the 90/10 split leaves too few validation rows to say anything.
MIN_ROWS = 1000
# How many offending rows an error message lists before "... and N more".
SHOWN_ROWS = 5
COLUMNS = (*SLOT_NAMES, LABEL_COLUMN)


class DataError(ValueError):
    """The training data cannot be used; the message says why and where."""


@dataclass
class Dataset:
    features: np.ndarray  # (N, 6) float32, raw units
    labels: np.ndarray  # (N,) int64 class indices into `catalog`
    catalog: Catalog
    path: Path
    sha256: str
    generated: bool  # unchanged output of trainer.generate with the current rules

    @property
    def rows(self) -> int:
        return len(self.labels)

    def fingerprint(self) -> dict:
        return {"path": self.path.name, "rows": self.rows, "sha256": self.sha256, "generated": self.generated}


def _first_rows(rows: np.ndarray) -> str:
    shown = ", ".join(str(int(r) + 1) for r in rows[:SHOWN_ROWS])
    more = f" and {len(rows) - SHOWN_ROWS} more" if len(rows) > SHOWN_ROWS else ""
    return shown + more


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        # Read everything as text: numeric checks below report bad cells with their rows.
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except ImportError as exc:
        raise DataError(f"{path}: reading Parquet needs pyarrow ({exc})") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read as {'Parquet' if path.suffix == '.parquet' else 'CSV'}: {exc}") from exc


def _check_columns(frame: pd.DataFrame, path: Path) -> None:
    names = [str(c).strip() for c in frame.columns]
    missing = [c for c in COLUMNS if c not in names]
    extra = [c for c in names if c not in COLUMNS]
    duplicated = sorted({c for c in names if names.count(c) > 1})
    problems = []
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if extra:
        problems.append(f"unexpected column(s) {', '.join(extra)}")
    if duplicated:
        problems.append(f"duplicated column(s) {', '.join(duplicated)}")
    if problems:
        raise DataError(f"{path}: {'; '.join(problems)} (expected exactly: {', '.join(COLUMNS)})")


def _numeric_features(frame: pd.DataFrame, path: Path) -> np.ndarray:
    columns = []
    for name in SLOT_NAMES:
        raw = frame[name]
        values = pd.to_numeric(raw.astype(str).str.strip() if raw.dtype == object else raw, errors="coerce")
        bad = np.flatnonzero(values.isna().to_numpy())
        if len(bad):
            example = frame[name].iloc[bad[0]]
            raise DataError(
                f"{path}: column {name} has {len(bad)} non-numeric or empty value(s) in row(s) "
                f"{_first_rows(bad)} (row {bad[0] + 1}: {example!r})"
            )
        columns.append(values.to_numpy(dtype=np.float64))
    return np.column_stack(columns)


def _check_ranges(features: np.ndarray, path: Path) -> None:
    bad = np.flatnonzero(invalid_rows(features))
    if not len(bad):
        return
    details = []
    for row in bad[:SHOWN_ROWS]:
        try:
            validate_features(features[row], prefix=f"row {row + 1}: features")
        except ValueError as exc:
            details.append(str(exc))
    raise DataError(f"{path}: {len(bad)} row(s) out of range: {_first_rows(bad)}; " + "; ".join(details))


def _labels(frame: pd.DataFrame, catalog: Catalog, path: Path, every_product: bool) -> np.ndarray:
    ids = frame[LABEL_COLUMN].astype(str).str.strip().to_numpy()
    known = {pid: i for i, pid in enumerate(catalog.product_ids)}
    labels = np.array([known.get(pid, -1) for pid in ids], dtype=np.int64)
    unknown_rows = np.flatnonzero(labels < 0)
    if len(unknown_rows):
        unknown = sorted(set(ids[unknown_rows]))
        raise DataError(
            f"{path}: unknown product id(s) {', '.join(repr(u) for u in unknown[:SHOWN_ROWS])} in "
            f"row(s) {_first_rows(unknown_rows)}; known: {', '.join(catalog.product_ids)} "
            f"(pass --catalog to train on other products)"
        )
    counts = np.bincount(labels, minlength=len(catalog))
    empty = [catalog[i].product_id for i in np.flatnonzero(counts == 0)]
    if empty and every_product:
        raise DataError(
            f"{path}: product(s) {', '.join(empty)} have no rows; every catalog product needs "
            f"purchases to be learned (remove it from the catalog or add data)"
        )
    return labels


def load_purchases(path: str | os.PathLike, catalog: Catalog | None = None, min_rows: int = MIN_ROWS,
                   every_product: bool = True) -> Dataset:
    """Read and check a purchases file. `catalog` defaults to the shop's default catalog.

    Training needs `min_rows` and rows of every product; scoring a version on a small
    hold-out file (min_rows=1, every_product=False) does not."""
    path = Path(path)
    catalog = catalog or DEFAULT_CATALOG
    frame = _read(path)
    _check_columns(frame, path)
    frame.columns = [str(c).strip() for c in frame.columns]
    if len(frame) < min_rows:
        raise DataError(f"{path}: has {len(frame)} rows; training needs at least {min_rows}")
    features = _numeric_features(frame, path)
    _check_ranges(features, path)
    labels = _labels(frame, catalog, path, every_product)
    sha256 = sha256_of(path)
    generated = catalog == DEFAULT_CATALOG and is_generated(path, sha256)
    return Dataset(features.astype(np.float32), labels, catalog, path, sha256, generated)
