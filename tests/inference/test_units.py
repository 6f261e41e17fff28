"""Unit tests of the serving domain code, no server: batcher, manager, repository, scoring."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
import pytest

from inference.batching import DynamicBatcher
from inference.manager import ModelManager, NoModelLoaded, VersionNotLoaded
from inference.repository import VersionSource
from inference.scoring import InvalidRequest, batch_matrix, rank, score_batch
from recommender import model_repository


@dataclass
class FakeModel:
    """Probabilities = the row's first value times one-hot of class (row[3] % 10), so each
    row's answer is recognisable; records every call's batch size."""

    version: int
    calls: list

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        self.calls.append(matrix.shape[0])
        out = np.zeros((matrix.shape[0], 10), dtype=np.float32)
        out[np.arange(matrix.shape[0]), matrix[:, 3].astype(int) % 10] = matrix[:, 0]
        return out


def _row(age: float, interest: int) -> tuple:
    return (age, 0.0, 0.0, float(interest), 0.0, 0.0)


# ---------------------------------------------------------------- batcher


def test_batcher_gathers_concurrent_requests_into_one_call_and_routes_answers():
    model = FakeModel(1, [])
    sizes = []

    async def main():
        batcher = DynamicBatcher(max_batch_size=64, timeout_s=0.01, on_batch=sizes.append, adaptive=False)
        futures = [batcher.submit(model, _row(i + 1, i)) for i in range(20)]
        return await asyncio.gather(*futures)

    results = asyncio.run(main())
    assert model.calls == [20] and sizes == [20]
    for i, probs in enumerate(results):
        assert int(np.argmax(probs)) == i % 10 and probs[i % 10] == i + 1


def test_batcher_respects_max_batch_size():
    model = FakeModel(1, [])

    async def main():
        batcher = DynamicBatcher(max_batch_size=8, timeout_s=0.01, adaptive=False)
        return await asyncio.gather(*[batcher.submit(model, _row(1, 1)) for i in range(20)])

    asyncio.run(main())
    assert model.calls == [8, 8, 4]


def test_batcher_without_timeout_scores_each_row_at_once():
    model = FakeModel(1, [])

    async def main():
        batcher = DynamicBatcher(max_batch_size=8, timeout_s=0.0)
        first = batcher.submit(model, _row(3, 3))
        assert first.done() and model.calls == [1]  # no waiting for company
        return await first

    assert int(np.argmax(asyncio.run(main()))) == 3


def test_batcher_waits_up_to_timeout_for_more_rows():
    model = FakeModel(1, [])

    async def main():
        batcher = DynamicBatcher(max_batch_size=64, timeout_s=0.05, adaptive=False)
        first = batcher.submit(model, _row(1, 1))
        await asyncio.sleep(0.005)  # a later request joins the same batch
        second = batcher.submit(model, _row(2, 2))
        return await asyncio.gather(first, second)

    asyncio.run(main())
    assert model.calls == [2]


def test_batcher_keeps_versions_apart_and_a_failing_model_fails_only_its_rows():
    good, other = FakeModel(1, []), FakeModel(2, [])

    class Broken:
        version = 3

        def predict(self, matrix):
            raise RuntimeError("boom")

    async def main():
        batcher = DynamicBatcher(max_batch_size=64, timeout_s=0.01, adaptive=False)
        futures = [batcher.submit(good, _row(1, 1)), batcher.submit(other, _row(1, 2)),
                   batcher.submit(Broken(), _row(1, 3)), batcher.submit(good, _row(1, 4))]
        return await asyncio.gather(*futures, return_exceptions=True)

    results = asyncio.run(main())
    assert good.calls == [2] and other.calls == [1]
    assert isinstance(results[2], RuntimeError)
    assert int(np.argmax(results[3])) == 4


# ---------------------------------------------------------------- manager


def test_manager_serves_newest_keeps_two_and_names_loaded_versions():
    manager = ModelManager(keep=2)
    with pytest.raises(NoModelLoaded):
        manager.get()
    assert not manager.ready
    for version in (1, 2):
        assert manager.install(FakeModel(version, [])) == []
    assert manager.get().version == 2 and manager.get(1).version == 1
    assert manager.install(FakeModel(3, [])) == [1]
    assert manager.versions() == [3, 2]
    with pytest.raises(VersionNotLoaded, match="model version 1 is not loaded; loaded versions: 3, 2"):
        manager.get(1)


def test_manager_installing_an_older_version_does_not_displace_newer():
    manager = ModelManager(keep=2)
    manager.install(FakeModel(5, []))
    manager.install(FakeModel(4, []))
    assert manager.install(FakeModel(2, [])) == [2]
    assert manager.versions() == [5, 4]


# ---------------------------------------------------------------- repository


def _version(models_dir, number):
    folder = model_repository.version_dir(models_dir, number)
    folder.mkdir(parents=True)
    return folder


def test_source_lists_new_versions_newest_first_and_skips_failed_and_staging(tmp_path):
    source = VersionSource(tmp_path)
    assert source.candidates(set()) == []
    for n in (1, 2, 3):
        _version(tmp_path, n)
    model_repository.staging_dir(tmp_path)  # half-written: never a candidate
    assert source.candidates(set()) == [3, 2]
    source.mark_failed(3)
    assert source.candidates(set()) == [2, 1]
    assert source.candidates({2, 1}) == []
    _version(tmp_path, 4)
    assert source.candidates({2, 1}) == [4]


def test_source_does_not_offer_versions_older_than_those_kept(tmp_path):
    for n in (1, 2, 3):
        _version(tmp_path, n)
    assert VersionSource(tmp_path).candidates({2, 3}) == []


# ---------------------------------------------------------------- scoring


def test_rank_is_best_first_with_ties_in_class_order():
    probs = np.array([[0.1, 0.3, 0.3, 0.2, 0.1]], dtype=np.float32)
    indices, scores = rank(probs, 3)
    assert indices.tolist() == [[1, 2, 3]]
    np.testing.assert_allclose(scores, [[0.3, 0.3, 0.2]])


@pytest.mark.parametrize("size,message", [
    (0, "features is empty"), (7, "not a multiple of 6"), (6 * 11, "cap is 10 rows"),
])
def test_batch_matrix_rejects_bad_shapes(size, message):
    with pytest.raises(InvalidRequest, match=message):
        batch_matrix(np.zeros(size, dtype=np.float32), max_rows=10)


def test_score_batch_scores_valid_rows_in_one_call_and_reports_bad_rows():
    model = FakeModel(1, [])
    matrix = np.array([_row(1, 3), (30, 1, -5, 1, 1, 1), _row(2, 7), (np.nan, 0, 0, 0, 0, 0)],
                      dtype=np.float32)
    result = score_batch(model.predict, matrix, top_k=2)
    assert model.calls == [2]
    assert [e.row for e in result.errors] == [1, 3]
    assert result.errors[0].field == "features[2]" and "budget" in result.errors[0].message
    assert result.errors[1].field == "features[0]" and "age" in result.errors[1].message
    assert result.indices[:, 0].tolist() == [3, -1, 7, -1]
    assert result.scores[1].tolist() == [0, 0] and result.scores[2, 0] == 2


# ---------------------------------------------------------------- wire encoding


def test_packed_fields_decode_to_the_same_values_as_extend():
    from inference import wire
    from recommender.v1 import recommend_pb2

    indices = np.array([[3, 0, 9], [-1, -1, -1], [127, 1, 2]], dtype=np.int32)
    scores = np.array([0.5, 0.25, 1e-8, 0, 0, 0, 1, 0.1, 0.2], dtype=np.float32)
    fields = recommend_pb2.RecommendBatchResponse.DESCRIPTOR.fields_by_name
    fast = recommend_pb2.RecommendBatchResponse(rows=3)
    fast.MergeFromString(wire.packed_small_int32(fields["product_indices"].number, indices)
                         + wire.packed_float(fields["scores"].number, scores))
    slow = recommend_pb2.RecommendBatchResponse(rows=3, product_indices=indices.ravel().tolist(),
                                                scores=scores.tolist())
    assert fast == slow
    assert wire.packed_small_int32(4, np.array([128])) is None


def test_fast_vector_validation_agrees_with_the_schema():
    from inference.scoring import validate_vector
    from recommender.schema import InvalidFeatures, validate_features

    rng = np.random.default_rng(5)
    specials = [np.nan, np.inf, -np.inf, -1, 0, 0.5, 1, 2, 3, 4, 5, 10, 11, 100, 100.5, 101, 1e9, 1e9 + 64]
    vectors = [rng.choice(specials, 6).tolist() for _ in range(3000)] + [[30, 1, 5e5, 5, 1, 4], [0] * 6, [1] * 5]
    valid = 0
    for vector in vectors:
        try:
            expected = validate_features(vector)
        except InvalidFeatures as exc:
            with pytest.raises(InvalidFeatures) as info:
                validate_vector(vector)
            assert str(info.value) == str(exc)
            continue
        valid += 1
        assert validate_vector(vector) == expected
    assert valid > 2  # both outcomes are exercised


def test_rank_one_agrees_with_rank_including_ties():
    from inference.scoring import rank_one

    rng = np.random.default_rng(2)
    rows = np.round(rng.random((200, 10)), 1).astype(np.float32)  # many exact ties
    for row in rows:
        indices, scores = rank(row[None, :], 4)
        assert rank_one(row, 4) == list(zip(indices[0].tolist(), scores[0].tolist(), strict=True))


def test_fast_matrix_check_agrees_with_the_schema():
    from inference.scoring import matrix_errors
    from recommender.schema import validate_matrix

    rng = np.random.default_rng(9)
    specials = np.array([np.nan, np.inf, -1, 0, 0.5, 1, 2, 3, 4, 5, 10, 11, 100, 101, 1e9, 2e9], dtype=np.float32)
    valid_row = np.array([30, 1, 5e5, 5, 1, 4], dtype=np.float32)
    for trial in range(300):
        matrix = np.tile(valid_row, (20, 1))
        if trial % 3:  # two in three matrices get one random bad-or-odd cell
            matrix[rng.integers(20), rng.integers(6)] = rng.choice(specials)
        # Row errors read like a single call's error: the row is in `row`, not the message.
        expected = [(e.row, e.field.replace(f"[row {e.row}]", ""), str(e).replace(f"[row {e.row}]", ""))
                    for e in validate_matrix(matrix)]
        assert [(e.row, e.field, e.message) for e in matrix_errors(matrix)] == expected
