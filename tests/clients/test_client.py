"""RecommenderClient against a real inference server process."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from clients.client import (
    BatchResult,
    InvalidArgument,
    RecommenderClient,
    RecommenderError,
    Unavailable,
    Unimplemented,
)
from recommender import schema
from tests.support import free_port

CUSTOMER = (35, 1, 300_000, 2, 1, 0)  # 30s woman, fitness, 300,000 won, own use


@pytest.fixture
def client(inference_target):
    with RecommenderClient(inference_target, timeout=10) as c:
        yield c


def test_recommend_features(client):
    rec = client.recommend(CUSTOMER, top_k=4)
    assert len(rec.items) == 4
    assert [i.rank for i in rec.items] == [1, 2, 3, 4]
    assert all(0 <= i.score <= 1 for i in rec.items)
    assert rec.items[0].score >= rec.items[-1].score
    assert {i.product_id for i in rec.items} <= set(schema.DEFAULT_CATALOG.product_ids)
    assert rec.items[0].name_ko and rec.items[0].display_name("ko") == rec.items[0].name_ko
    assert rec.model_version == 1
    assert rec.features == tuple(float(v) for v in CUSTOMER)
    assert rec.vectorizer == ""


def test_invalid_vector_keeps_grpc_code_and_message(client):
    with pytest.raises(InvalidArgument) as info:
        client.recommend((0, 0, -5, 0, 0, 0))
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "budget" in info.value.details
    assert isinstance(info.value, RecommenderError)


def test_exactly_one_of_features_and_text(client):
    with pytest.raises(ValueError):
        client.recommend()
    with pytest.raises(ValueError):
        client.recommend(CUSTOMER, text="hello")


def test_recommend_batch_reports_bad_rows(client):
    matrix = np.array([CUSTOMER, (0, 0, -5, 0, 0, 0), (70, 2, 0, 10, 2, 4)], dtype=np.float32)
    result = client.recommend_batch(matrix, top_k=2)
    assert isinstance(result, BatchResult)
    assert result.rows == 3 and result.top_k == 2
    assert set(result.errors) == {1} and "budget" in result.errors[1]
    assert result.product_ids(1) == []
    assert len(result.product_ids(0)) == 2 and len(result.product_ids(2)) == 2
    np.testing.assert_array_equal(result.features, matrix)
    single = client.recommend(CUSTOMER, top_k=2)
    assert result.product_ids(0) == [i.product_id for i in single.items]


def test_recommend_stream_answers_in_order(client):
    rng = np.random.default_rng(1)
    batches = []
    for size in (5, 1, 17):
        rows = np.zeros((size, 6), dtype=np.float32)
        rows[:, 0] = rng.integers(1, 90, size)
        rows[:, 3] = rng.integers(0, 11, size)
        batches.append(rows)
    results = list(client.recommend_stream(iter(batches), top_k=3))
    assert [r.rows for r in results] == [5, 1, 17]
    for rows, result in zip(batches, results, strict=True):
        np.testing.assert_array_equal(result.features, rows)
        assert not result.errors


def test_inference_server_has_no_chat_or_vectorize(client):
    with pytest.raises(Unimplemented) as info:
        client.vectorize("hello")
    assert info.value.code == grpc.StatusCode.UNIMPLEMENTED
    with pytest.raises(Unimplemented):
        client.chat("hello")


def test_unreachable_server_is_unavailable():
    with RecommenderClient(f"127.0.0.1:{free_port()}", timeout=2) as c:
        with pytest.raises(Unavailable) as info:
            c.recommend(CUSTOMER)
        assert info.value.code == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(Unavailable):
            c.wait_ready(0.5)


def test_tls_client_cannot_talk_to_plaintext_server(inference_target):
    with RecommenderClient(inference_target, timeout=3, tls=True) as c:
        with pytest.raises(RecommenderError) as info:
            c.recommend(CUSTOMER)
        assert info.value.code == grpc.StatusCode.UNAVAILABLE
