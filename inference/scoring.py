"""Plain-Python (numpy) domain logic of the serving path: parse, validate, rank.

No gRPC here, so it is unit-testable; the servicer maps the exceptions to status codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recommender.errors import InvalidArgument, RowProblem
from recommender.schema import FEATURE_COUNT, SLOTS, InvalidFeatures, invalid_rows, validate_features

# (low, high, must be whole) per slot, derived from the schema. A coded slot's valid values
# are 0 plus its codes; the fast path below is exact only while those codes are 1..high.
_BOUNDS = tuple((float(s.low), float(s.high), s.coded or s.name == "age") for s in SLOTS)
_CODES_CONTIGUOUS = all({c.value for c in s.codes} == set(range(1, s.high + 1)) for s in SLOTS if s.coded)


def validate_vector(values) -> tuple[float, ...]:
    """schema.validate_features with a fast path for the common, valid vector (a few
    comparisons instead of building messages); anything suspicious takes the full check,
    which raises InvalidFeatures naming the slot."""
    floats = tuple(values)
    if _CODES_CONTIGUOUS and len(floats) == FEATURE_COUNT:
        for value, (low, high, whole) in zip(floats, _BOUNDS, strict=True):
            # NaN fails every comparison; inf fails the bounds.
            if not (low <= value <= high) or (whole and value % 1.0):
                break
        else:
            return floats
    return validate_features(floats)


_LOW32 = np.array([b[0] for b in _BOUNDS], dtype=np.float32)
_HIGH32 = np.array([b[1] for b in _BOUNDS], dtype=np.float32)
_WHOLE = np.array([b[2] for b in _BOUNDS])


def matrix_errors(matrix: np.ndarray) -> list[RowProblem]:
    """The rows of an (N, 6) matrix that break the contract, each with the field and the
    message a single call for that customer would get ("features[2] budget must be ...").
    A float32 fast check (about half the cost) proves the common all-valid batch clean; any
    doubt takes the schema's full check."""
    if _CODES_CONTIGUOUS and matrix.dtype == np.float32:
        in_range = ((matrix >= _LOW32) & (matrix <= _HIGH32)).all()  # NaN compares False
        whole = matrix[:, _WHOLE]
        if in_range and (whole == np.floor(whole)).all():
            return []
    problems = []
    for row in np.flatnonzero(invalid_rows(matrix)):
        try:
            validate_features(matrix[row])
        except InvalidFeatures as exc:
            problems.append(RowProblem(int(row), exc.field, exc.message))
    return problems


class InvalidRequest(InvalidArgument):
    """The request as a whole is unusable (INVALID_ARGUMENT on `features`)."""

    def __init__(self, message: str):
        super().__init__(message, field="features")


def rank_one(probabilities: np.ndarray, top_k: int) -> list[tuple[int, float]]:
    """(class index, score) pairs of one row, best first; ties keep class order. Plain
    Python: for 10 classes it is several times cheaper than numpy's argsort + take."""
    scores = probabilities.tolist()
    order = sorted(range(len(scores)), key=scores.__getitem__, reverse=True)[:top_k]  # stable
    return [(index, scores[index]) for index in order]


def rank(probabilities: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best-first class indices and their scores, (N, top_k) each. Ties keep class order."""
    probabilities = np.asarray(probabilities, dtype=np.float32)
    order = np.argsort(-probabilities, axis=-1, kind="stable")[..., :top_k]
    return order.astype(np.int32), np.take_along_axis(probabilities, order, axis=-1)


def batch_matrix(flat: np.ndarray, max_rows: int) -> np.ndarray:
    """The flat N*6 features of a batch message as an (N, 6) float32 matrix."""
    if flat.size == 0:
        raise InvalidRequest(f"features is empty: send N*{FEATURE_COUNT} floats for N customers (1 to {max_rows:,})")
    if flat.size % FEATURE_COUNT:
        raise InvalidRequest(
            f"features has {flat.size} values, not a multiple of {FEATURE_COUNT}: "
            f"send N*{FEATURE_COUNT} floats, customer i at [{FEATURE_COUNT}i, {FEATURE_COUNT}i+{FEATURE_COUNT})"
        )
    rows = flat.size // FEATURE_COUNT
    if rows > max_rows:
        raise InvalidRequest(f"batch has {rows:,} rows; the cap is {max_rows:,} rows per message: split it")
    return flat.reshape(rows, FEATURE_COUNT)


@dataclass
class BatchResult:
    indices: np.ndarray  # (N, k) int32, -1 for invalid rows
    scores: np.ndarray  # (N, k) float32, 0 for invalid rows
    errors: list[RowProblem]


def score_batch(predict, matrix: np.ndarray, top_k: int) -> BatchResult:
    """Score the valid rows in ONE model call; invalid rows get -1/0 and an error each."""
    errors = matrix_errors(matrix)
    rows = matrix.shape[0]
    if not errors:
        indices, scores = rank(predict(matrix), top_k)
        return BatchResult(indices, scores, errors)
    indices = np.full((rows, top_k), -1, dtype=np.int32)
    scores = np.zeros((rows, top_k), dtype=np.float32)
    valid = np.ones(rows, dtype=bool)
    valid[[e.row for e in errors]] = False
    if valid.any():
        indices[valid], scores[valid] = rank(predict(np.ascontiguousarray(matrix[valid])), top_k)
    return BatchResult(indices, scores, errors)
