"""Loading purchase data: good files load; every kind of bad file is rejected by
`python -m trainer train` with a one-line message and no model version appears."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recommender import model_repository
from recommender.schema import DEFAULT_CATALOG, SLOT_NAMES
from tests.trainer.conftest import SMALL_ROWS, run_trainer
from trainer.data import MIN_ROWS, DataError, load_purchases
from trainer.generate import write_dataset


def test_generated_csv_loads_as_generated_data(small_csv, small_frame):
    data = load_purchases(small_csv)
    assert data.rows == SMALL_ROWS
    assert data.features.dtype == np.float32 and data.features.shape == (SMALL_ROWS, 6)
    np.testing.assert_array_equal(data.features, small_frame[list(SLOT_NAMES)].to_numpy(np.float32))
    assert [DEFAULT_CATALOG[i].product_id for i in data.labels[:20]] == list(small_frame["product_id"][:20])
    assert data.generated
    assert data.fingerprint()["rows"] == SMALL_ROWS and len(data.sha256) == 64


def test_parquet_loads_the_same_rows(tmp_path, small_frame, small_csv):
    parquet = write_dataset(small_frame, tmp_path / "purchases.parquet", seed=11)
    a, b = load_purchases(small_csv), load_purchases(parquet)
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert b.generated


def test_edited_file_is_no_longer_treated_as_generated(small_csv):
    frame = pd.read_csv(small_csv)
    frame.loc[0, "product_id"] = "laptop" if frame.loc[0, "product_id"] != "laptop" else "tablet"
    frame.to_csv(small_csv, index=False)
    assert not load_purchases(small_csv).generated


def test_duplicate_rows_and_column_order_are_fine(tmp_path, small_frame):
    frame = pd.concat([small_frame, small_frame.head(100)])[["product_id", *reversed(SLOT_NAMES)]]
    path = tmp_path / "shop.csv"
    frame.to_csv(path, index=False)
    data = load_purchases(path)
    assert data.rows == SMALL_ROWS + 100
    assert not data.generated  # no generator sidecar: a shop's file


def test_a_shop_catalog_names_other_products(tmp_path, small_frame):
    catalog = [dict(p, product_id=f"shop-{p['product_id']}") for p in DEFAULT_CATALOG.to_json()]
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    frame = small_frame.assign(product_id="shop-" + small_frame["product_id"])
    frame.to_csv(tmp_path / "shop.csv", index=False)
    from recommender.schema import Catalog

    data = load_purchases(tmp_path / "shop.csv", catalog=Catalog.from_json(catalog))
    assert data.catalog.product_ids[0] == "shop-earbuds"
    with pytest.raises(DataError, match="unknown product id"):
        load_purchases(tmp_path / "shop.csv")


def _rows(frame: pd.DataFrame, column: str, rows: list[int], value) -> pd.DataFrame:
    """Set `column` in the given 1-based data rows."""
    frame = frame.astype({column: object}).copy()
    for row in rows:
        frame.loc[row - 1, column] = value
    return frame


BAD_FILES = {
    "missing column": (lambda f: f.drop(columns=["season"]),
                       ["missing column(s) season", "expected exactly: age, gender, budget"]),
    "extra column": (lambda f: f.assign(note="x"), ["unexpected column(s) note"]),
    "non-numeric value": (lambda f: _rows(f, "budget", [3, 9], "lots"),
                          ["column budget has 2 non-numeric or empty value(s) in row(s) 3, 9", "'lots'"]),
    "empty value": (lambda f: _rows(f, "age", [4], ""), ["column age has 1 non-numeric or empty", "row(s) 4"]),
    "out-of-range codes": (
        lambda f: _rows(_rows(f, "interest", [2, 5], 11), "gender", [7], 3),
        ["3 row(s) out of range: 2, 5, 7",
         "row 2: features[3] interest must be 0 (not stated) or one of 1 music",
         "row 7: features[1] gender must be 0 (not stated) or one of 1 female, 2 male; got 3"]),
    "many out-of-range rows": (lambda f: _rows(f, "season", list(range(10, 30)), 5),
                               ["20 row(s) out of range: 10, 11, 12, 13, 14 and 15 more"]),
    "negative budget": (lambda f: _rows(f, "budget", [6], -5),
                        ["row 6: features[2] budget must be between 0 and 1e9 KRW, got -5"]),
    "unknown product id": (lambda f: _rows(f, "product_id", [8, 12], "toaster"),
                           ["unknown product id(s) 'toaster' in row(s) 8, 12", "known: earbuds, smartwatch"]),
    "too few rows": (lambda f: f.head(MIN_ROWS - 1), [f"has {MIN_ROWS - 1} rows; training needs at least {MIN_ROWS}"]),
    "product with no rows": (lambda f: f.replace({"product_id": {"camera": "laptop"}}),
                             ["product(s) camera have no rows"]),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_is_rejected_and_publishes_nothing(case, tmp_path, small_frame):
    change, expected = BAD_FILES[case]
    path = tmp_path / "bad.csv"
    change(small_frame).to_csv(path, index=False)
    models = tmp_path / "models"

    result = run_trainer("train", "--data", path, "--models-dir", models, "--quiet")

    assert result.returncode == 2, result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, result.stderr
    for fragment in expected:
        assert fragment in error_lines[0]
    assert model_repository.list_versions(models) == []
    assert not model_repository.model_root(models).exists() or not any(model_repository.model_root(models).iterdir())


def test_missing_file_is_rejected(tmp_path):
    result = run_trainer("train", "--data", tmp_path / "nope.csv", "--models-dir", tmp_path / "models")
    assert result.returncode == 2
    assert "nope.csv: no such file" in result.stderr
    assert model_repository.list_versions(tmp_path / "models") == []


def test_unreadable_parquet_is_rejected(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="cannot read as Parquet"):
        load_purchases(path)


def test_a_hold_out_file_for_scoring_may_be_small_and_miss_products(tmp_path, small_frame):
    path = tmp_path / "holdout.csv"
    small_frame[small_frame["product_id"] != "camera"].head(50).to_csv(path, index=False)
    data = load_purchases(path, min_rows=1, every_product=False)
    assert data.rows == 50 and DEFAULT_CATALOG.index_of("camera") not in data.labels
    with pytest.raises(DataError, match="have no rows"):
        load_purchases(path, min_rows=1)
