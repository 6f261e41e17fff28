"""The contract in code: every slot's bounds, codes, NaN/inf, length, batch validation."""

import math

import numpy as np
import pytest

from recommender import schema
from recommender.schema import InvalidFeatures, validate_features

VALID = [35, 1, 300_000, 2, 1, 3]


def test_valid_vector_round_trips_as_floats():
    assert validate_features(VALID) == tuple(float(v) for v in VALID)


def test_all_zero_vector_is_valid_not_stated_everywhere():
    assert validate_features([0] * 6) == (0.0,) * 6
    assert schema.unstated_slots([0] * 6) == schema.SLOT_NAMES


@pytest.mark.parametrize("values", [[], [1] * 5, [1] * 7])
def test_wrong_length_names_the_count(values):
    with pytest.raises(InvalidFeatures, match=f"exactly 6 values .* got {len(values)}") as exc:
        validate_features(values)
    assert exc.value.slot is None


@pytest.mark.parametrize("index", range(6))
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_names_the_slot(index, bad):
    values = list(VALID)
    values[index] = bad
    with pytest.raises(InvalidFeatures, match=rf"features\[{index}\] {schema.SLOTS[index].name} must be a finite number"):
        validate_features(values)


# (slot index, first valid, last valid, invalid values just outside / not whole)
BOUNDS = [
    (0, 0, 100, [-1, 101, 35.5]),
    (1, 0, 2, [-1, 3, 1.5]),
    (2, 0, 1_000_000_000, [-5, 1_000_000_001]),
    (3, 0, 10, [-1, 11, 2.5]),
    (4, 0, 2, [-1, 3, 0.5]),
    (5, 0, 4, [-1, 5, 3.2]),
]


@pytest.mark.parametrize("index,low,high,bad_values", BOUNDS)
def test_every_slot_accepts_its_bounds_and_rejects_beyond(index, low, high, bad_values):
    name = schema.SLOTS[index].name
    for good in (low, high):
        values = list(VALID)
        values[index] = good
        validate_features(values)
    for bad in bad_values:
        values = list(VALID)
        values[index] = bad
        with pytest.raises(InvalidFeatures, match=rf"features\[{index}\] {name} ") as exc:
            validate_features(values)
        assert exc.value.slot == name


def test_budget_message_is_actionable():
    values = list(VALID)
    values[2] = -5
    with pytest.raises(InvalidFeatures) as exc:
        validate_features(values)
    assert str(exc.value) == "features[2] budget must be between 0 and 1e9 KRW, got -5"


def test_coded_slot_message_lists_the_codes():
    values = list(VALID)
    values[3] = 11
    with pytest.raises(InvalidFeatures, match="1 music, 2 fitness"):
        validate_features(values)


def test_non_numbers_are_rejected():
    with pytest.raises(InvalidFeatures, match="must be numbers"):
        validate_features(["a"] * 6)


def test_matrix_validation_reports_each_bad_row_with_its_index():
    matrix = np.array([VALID, [35, 3, 0, 0, 0, 0], VALID, [math.nan, 0, 0, 0, 0, 0]], dtype=np.float32)
    errors = schema.validate_matrix(matrix)
    assert [e.row for e in errors] == [1, 3]
    assert "gender" in str(errors[0]) and "row 1" in str(errors[0])
    assert "finite" in str(errors[1])


def test_matrix_fast_mask_agrees_with_the_scalar_validator():
    rng = np.random.default_rng(0)
    matrix = np.column_stack([
        rng.integers(-2, 103, 2000), rng.integers(-1, 4, 2000), rng.integers(-10, 3, 2000) * 4e8,
        rng.integers(-1, 12, 2000), rng.integers(-1, 4, 2000), rng.integers(-1, 6, 2000),
    ]).astype(np.float64)
    matrix[::97, 0] += 0.5
    mask = schema.invalid_rows(matrix)
    for row, bad in enumerate(mask):
        try:
            validate_features(matrix[row])
            scalar_bad = False
        except InvalidFeatures:
            scalar_bad = True
        assert bad == scalar_bad, matrix[row]
    assert 0 < mask.sum() < len(mask)


def test_matrix_of_wrong_width_is_rejected():
    with pytest.raises(InvalidFeatures, match="rows of 6"):
        schema.validate_matrix(np.zeros((3, 5)))


@pytest.mark.parametrize("top_k,expected", [(0, 3), (1, 1), (10, 10)])
def test_top_k_resolution(top_k, expected):
    assert schema.resolve_top_k(top_k) == expected


@pytest.mark.parametrize("top_k", [-1, 11, 1000])
def test_top_k_out_of_range(top_k):
    with pytest.raises(ValueError, match="top_k must be between 1 and 10"):
        schema.resolve_top_k(top_k)


def test_text_rules():
    assert schema.validate_text("안녕하세요") == "안녕하세요"
    with pytest.raises(schema.InvalidText, match="empty"):
        schema.validate_text("   ")
    with pytest.raises(schema.InvalidText, match="at most 2000 characters, got 2001"):
        schema.validate_text("가" * 2001)
    with pytest.raises(schema.InvalidText, match="UTF-8"):
        schema.validate_text(b"\xff\xfe")
    with pytest.raises(schema.InvalidText, match="UTF-8"):
        schema.validate_text("bad \ud800 surrogate")


def test_default_catalog_matches_the_contract():
    catalog = schema.DEFAULT_CATALOG
    assert catalog.product_ids == (
        "earbuds", "smartwatch", "laptop", "tablet", "console",
        "camera", "ereader", "airfryer", "hairdryer", "massager",
    )
    # Every interest has exactly one primary product.
    assert sorted(p.primary_interest for p in catalog) == list(range(1, 11))
    assert catalog.primary_for(5).product_id == "console"
    assert catalog[7].price_krw == 150_000


def test_catalog_json_round_trip_and_errors():
    catalog = schema.DEFAULT_CATALOG
    assert schema.Catalog.from_json(catalog.to_json()) == catalog
    with pytest.raises(ValueError, match="duplicate"):
        schema.Catalog.from_json([{"product_id": "a"}, {"product_id": "a"}])
    with pytest.raises(ValueError, match="malformed"):
        schema.Catalog.from_json([{"name_en": "no id"}])


def test_schema_does_not_import_tensorflow():
    import subprocess
    import sys

    code = "import sys, recommender.schema, recommender.model_repository; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
