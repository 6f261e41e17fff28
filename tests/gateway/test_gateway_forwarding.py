"""Plain-Python parts of the gateway's forwarding: address parsing (gateway.backend), and how a
batch of texts becomes one vector batch and is spread back over the caller's rows
(gateway.batches)."""

from __future__ import annotations

import pytest

from gateway import conversions
from gateway.backend import parse_addresses, resolve
from gateway.batches import merge_batch, prepare_text_batch
from gateway.vectorizers.base import CACHE, LOCAL, VectorizeResult
from recommender import schema
from recommender.v1 import common_pb2, recommend_pb2


def test_parse_addresses_accepts_lists_and_rejects_garbage():
    assert parse_addresses("127.0.0.1:8501, 127.0.0.1:8502") == ["127.0.0.1:8501", "127.0.0.1:8502"]
    assert parse_addresses(["a:1,b:2", "c:3"]) == ["a:1", "b:2", "c:3"]
    for bad in ("", "127.0.0.1", "host:port", ":80", "h:70000"):
        with pytest.raises(ValueError):
            parse_addresses(bad)


def test_addresses_resolve_to_ipv4_once():
    assert [resolve(a) for a in ("127.0.0.1:8501", "localhost:8502")] == ["127.0.0.1:8501", "127.0.0.1:8502"]


def fixed_vectorizer(text: str) -> VectorizeResult:
    """A stand-in vectorizer whose output is the text's length in the age slot: easy to trace
    which row went where."""
    return VectorizeResult((float(len(text)), 0, 0, 0, 0, 0), CACHE if text == "cached" else LOCAL, "en")


def test_prepare_text_batch_keeps_invalid_rows_out_of_the_forward():
    prepared = prepare_text_batch(["ab", "", "abcd", "x" * 2001, "cached"], top_k=2, model_version=0,
                                  vectorize=fixed_vectorizer)
    assert prepared.rows == 5
    assert prepared.forwarded_rows == [0, 2, 4]
    assert list(prepared.request.features) == [2, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0]
    assert prepared.request.top_k == 2
    assert [(e.row, e.field) for e in prepared.errors] == [(1, "texts[1]"), (3, "texts[3]")]
    assert prepared.errors[0].message == "text must not be empty"
    assert prepared.vectorizer == LOCAL  # the backend that did the work, not the cache
    assert len(prepared.all_features) == 5 * schema.FEATURE_COUNT


def test_prepare_text_batch_checks_top_k():
    with pytest.raises(ValueError, match="top_k"):
        prepare_text_batch(["a"], top_k=99, model_version=0, vectorize=fixed_vectorizer)


def test_merge_batch_spreads_answers_and_remaps_backend_errors():
    prepared = prepare_text_batch(["ab", "", "abcd"], top_k=2, model_version=0, vectorize=fixed_vectorizer)
    answer = recommend_pb2.RecommendBatchResponse(
        model_version=3, top_k=2, rows=2, product_indices=[4, 1, -1, -1], scores=[0.6, 0.3, 0, 0],
        product_ids=list(schema.DEFAULT_CATALOG.product_ids),
        errors=[recommend_pb2.RowError(row=1, field="features[2]", message="backend says no")],
    )
    merged = merge_batch(prepared, answer, conversions.vectorizer_enum(LOCAL))
    assert (merged.rows, merged.top_k, merged.model_version) == (3, 2, 3)
    assert list(merged.product_indices) == [4, 1, -1, -1, -1, -1]
    assert list(merged.scores) == pytest.approx([0.6, 0.3, 0, 0, 0, 0])
    # Rows are the caller's; a vector the backend refused is named by its text.
    assert [(e.row, e.field, e.message) for e in merged.errors] == [
        (1, "texts[1]", "text must not be empty"), (2, "texts[2]", "backend says no")]
    assert merged.vectorizer == common_pb2.VECTORIZER_LOCAL
    assert len(merged.features) == 18 and merged.features[12] == 4


def test_merge_batch_without_a_forward_answers_every_row_as_failed():
    prepared = prepare_text_batch(["", " "], top_k=0, model_version=0, vectorize=fixed_vectorizer)
    assert prepared.request is None
    merged = merge_batch(prepared, None, common_pb2.VECTORIZER_UNSPECIFIED)
    assert (merged.rows, merged.top_k) == (2, schema.DEFAULT_TOP_K)
    assert list(merged.product_indices) == [-1] * 6
    assert [e.row for e in merged.errors] == [0, 1]


def test_conversions_round_trip_slots():
    features = (61.0, 2.0, 300_000.0, 10.0, 2.0, 4.0)
    slots = conversions.slots_from_features(features)
    assert slots.gender == common_pb2.GENDER_MALE and slots.season == common_pb2.SEASON_WINTER
    assert conversions.features_from_slots(slots) == features
    assert conversions.unstated_slot_enums((0, 1, 0, 1, 1, 1)) == [common_pb2.SLOT_AGE, common_pb2.SLOT_BUDGET]
    assert [conversions.slot_index(conversions.slot_enum(i)) for i in range(6)] == list(range(6))
    assert conversions.vectorizer_enum("bedrock-flow") == common_pb2.VECTORIZER_BEDROCK_FLOW
    assert conversions.vectorizer_enum("") == common_pb2.VECTORIZER_UNSPECIFIED
