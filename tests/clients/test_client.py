"""RecommenderClient (the recommender-client package) against a real inference server process,
and its options (token, TLS, request ids, retries, structured errors) against a small in-process
fake server that records what it receives."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from recommender_client import service_config

from clients.client import (
    AsyncRecommenderClient,
    BatchResult,
    FieldViolation,
    InvalidArgument,
    RecommenderClient,
    RecommenderError,
    Unavailable,
    Unimplemented,
    batch_request,
)
from recommender import schema
from recommender.v1 import common_pb2, recommend_pb2, recommend_pb2_grpc
from tests.support import ROOT, free_port

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


def test_invalid_vector_keeps_grpc_code_message_and_field(client):
    with pytest.raises(InvalidArgument) as info:
        client.recommend((0, 0, -5, 0, 0, 0))
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "budget" in info.value.details
    assert isinstance(info.value, RecommenderError)
    assert info.value.field_violations[0].field == "features[2]"
    assert "budget" in info.value.field_violations[0].description
    assert info.value.request_id


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
    assert result.error_fields == {1: "features[2]"}
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


def test_metadata_of_the_inference_server(client):
    meta = client.metadata()
    assert meta.server == "inference" and meta.schema_version == schema.SCHEMA_VERSION
    assert meta.default_version == 1
    assert [(v.version, v.state, v.is_default) for v in meta.versions] == [(1, "available", True)]
    assert [p.product_id for p in meta.catalog] == list(schema.DEFAULT_CATALOG.product_ids)
    assert [p.typical_price_krw for p in meta.catalog] == [p.price_krw for p in schema.DEFAULT_CATALOG]
    assert meta.catalog[1].primary_interest == "fitness"
    assert meta.versions[0].catalog == meta.catalog and meta.versions[0].backend
    assert list(meta.raw.signature.input.shape) == [-1, schema.FEATURE_COUNT]


def test_async_client_against_the_inference_server(inference_target):
    async def calls():
        async with AsyncRecommenderClient(inference_target, timeout=10) as c:
            rec = await c.recommend(CUSTOMER, top_k=2)
            batch = await c.recommend_batch([CUSTOMER, (0, 0, -5, 0, 0, 0)], top_k=2)
            streamed = [r.rows async for r in c.recommend_stream([[CUSTOMER], [CUSTOMER] * 3], top_k=1)]
            meta = await c.metadata()
            with pytest.raises(InvalidArgument) as info:
                await c.recommend((0, 0, -5, 0, 0, 0))
            return rec, batch, streamed, meta, info.value

    rec, batch, streamed, meta, error = asyncio.run(calls())
    assert len(rec.items) == 2 and rec.model_version == 1
    assert batch.product_ids(0) == [i.product_id for i in rec.items] and batch.error_fields == {1: "features[2]"}
    assert streamed == [1, 3]
    assert meta.server == "inference"
    assert error.field_violations[0].field == "features[2]"


# --------------------------------------------------------------------------- options, on a fake server


@dataclasses.dataclass(frozen=True)
class FakeStatus(grpc.Status):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple


class FakeRecommend(recommend_pb2_grpc.RecommendServiceServicer):
    """Answers Recommend with one item, after failing `fail_first` calls with UNAVAILABLE;
    records each call's metadata. A budget < 0 is answered like the real servers do."""

    def __init__(self):
        self.calls: list[dict[str, str]] = []
        self.fail_first = 0

    def Recommend(self, request, context):
        self.calls.append(dict(context.invocation_metadata()))
        context.set_trailing_metadata((("x-request-id", "server-" + self.calls[-1].get("x-request-id", "")),))
        if len(self.calls) <= self.fail_first:
            context.abort(grpc.StatusCode.UNAVAILABLE, "warming up")
        if request.features[2] < 0:
            detail = any_pb2.Any()
            detail.Pack(error_details_pb2.BadRequest(field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field="features[2]", description="budget must be >= 0")]))
            status = rpc_status.to_status(status_pb2.Status(
                code=code_pb2.INVALID_ARGUMENT, message="features[2] budget must be >= 0", details=[detail]))
            # abort_with_status replaces the trailing metadata: the request id travels in the status
            context.abort_with_status(FakeStatus(status.code, status.details, (
                *status.trailing_metadata, ("x-request-id", "server-" + self.calls[-1].get("x-request-id", "")))))
        return recommend_pb2.RecommendResponse(
            items=[common_pb2.RecommendedItem(product_id="laptop", rank=1, score=0.5)], model_version=7)


@contextlib.contextmanager
def fake_server(credentials: grpc.ServerCredentials | None = None):
    servicer = FakeRecommend()
    server = grpc.server(ThreadPoolExecutor(4))
    recommend_pb2_grpc.add_RecommendServiceServicer_to_server(servicer, server)
    address = "127.0.0.1:0"
    port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        server.stop(0)


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.delenv("RECOMMENDER_TOKEN", raising=False)
    monkeypatch.delenv("RECOMMENDER_CA", raising=False)
    with fake_server() as (target, servicer):
        yield target, servicer


def test_token_from_the_environment_or_the_option_and_request_ids(fake, monkeypatch):
    target, servicer = fake
    monkeypatch.setenv("RECOMMENDER_TOKEN", "from-env")
    with RecommenderClient(target) as c:
        rec = c.recommend(CUSTOMER, request_id="abc123")
        assert rec.request_id == "server-abc123"  # the id the server returned, not the one sent
        auto = c.recommend(CUSTOMER)
    with RecommenderClient(target, token="explicit", metadata=[("x-team", "search")]) as c:
        c.recommend(CUSTOMER)
    with RecommenderClient(target, token="") as c:  # "" ignores the environment
        c.recommend(CUSTOMER)
    first, second, third, fourth = servicer.calls
    assert first["authorization"] == "Bearer from-env" and first["x-request-id"] == "abc123"
    assert len(second["x-request-id"]) == 32 and auto.request_id == "server-" + second["x-request-id"]
    assert third["authorization"] == "Bearer explicit" and third["x-team"] == "search"
    assert "authorization" not in fourth


def test_field_violations_and_request_id_on_errors(fake):
    target, _ = fake
    with RecommenderClient(target) as c:
        with pytest.raises(InvalidArgument) as info:
            c.recommend((0, 0, -5, 0, 0, 0), request_id="bad-1")
    error = info.value
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT and error.details.startswith("features[2]")
    assert error.field_violations == (FieldViolation("features[2]", "budget must be >= 0"),)
    assert error.request_id == "server-bad-1"


def test_unavailable_is_retried_with_backoff_through_the_service_config(fake):
    target, servicer = fake
    servicer.fail_first = 2
    with RecommenderClient(target, max_attempts=4) as c:
        assert c.recommend(CUSTOMER).model_version == 7
    assert len(servicer.calls) == 3
    servicer.calls.clear()
    with RecommenderClient(target, max_attempts=1) as c:
        with pytest.raises(Unavailable):
            c.recommend(CUSTOMER)
    assert len(servicer.calls) == 1
    config = json.loads(service_config(5, 0.2, 3.0))["methodConfig"][0]
    assert config["retryPolicy"] == {"maxAttempts": 5, "initialBackoff": "0.2s", "maxBackoff": "3.0s",
                                     "backoffMultiplier": 2.0, "retryableStatusCodes": ["UNAVAILABLE"]}
    assert {"service": "recommender.v1.MetadataService"} in config["name"]


def test_async_client_sends_token_and_request_id_and_types_errors(fake):
    target, servicer = fake

    async def calls():
        async with AsyncRecommenderClient(target, token="t0k") as c:
            rec = await c.recommend(CUSTOMER, request_id="aio-1")
            with pytest.raises(InvalidArgument) as info:
                await c.recommend((0, 0, -5, 0, 0, 0))
            return rec, info.value

    rec, error = asyncio.run(calls())
    assert rec.request_id == "server-aio-1" and rec.items[0].product_id == "laptop"
    assert servicer.calls[0]["authorization"] == "Bearer t0k"
    assert error.field_violations[0].field == "features[2]"


def test_tls_with_a_ca_file_and_a_client_certificate(tmp_path, monkeypatch):
    from edge.certs import ensure_dev_secrets

    monkeypatch.delenv("RECOMMENDER_TOKEN", raising=False)
    certs = ensure_dev_secrets(tmp_path / "secrets")
    ca, server_pem, server_key = (Path(p).read_bytes() for p in (certs.ca_cert, certs.server_cert, certs.server_key))
    mutual = grpc.ssl_server_credentials([(server_key, server_pem)], root_certificates=ca,
                                         require_client_auth=True)
    with fake_server(mutual) as (target, servicer):
        with RecommenderClient(target, ca_file=str(certs.ca_cert), client_cert_file=str(certs.client_cert),
                               client_key_file=str(certs.client_key), max_attempts=1) as c:
            assert c.recommend(CUSTOMER).model_version == 7
        monkeypatch.setenv("RECOMMENDER_CA", str(certs.ca_cert))  # the CA from the environment turns TLS on
        with RecommenderClient(target, timeout=3, max_attempts=1) as c:
            with pytest.raises(Unavailable):  # but without a client certificate the handshake fails
                c.recommend(CUSTOMER)
        with RecommenderClient(target, timeout=3, tls=False, max_attempts=1) as c:
            with pytest.raises(Unavailable):  # tls=False ignores RECOMMENDER_CA: plaintext to a TLS port
                c.recommend(CUSTOMER)
    assert len(servicer.calls) == 1
    with pytest.raises(ValueError):
        RecommenderClient("127.0.0.1:1", client_cert_file=str(certs.client_cert))  # key missing


def readme_client_examples() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("<!-- client-examples:start"):text.index("<!-- client-examples:end -->")]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_readme_examples_run_against_a_gateway(gateway_target, tmp_path, monkeypatch):
    examples = readme_client_examples()
    assert len(examples) == 2 and "AsyncRecommenderClient" in examples[1]
    env = {k: v for k, v in os.environ.items() if k not in ("RECOMMENDER_TOKEN", "RECOMMENDER_CA")}
    outputs = []
    for i, code in enumerate(examples):
        script = tmp_path / f"example{i}.py"
        script.write_text(code.replace("127.0.0.1:50051", gateway_target))
        result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    sync, aio = outputs
    assert sync.splitlines()[0].startswith("1 ") and "model 1 request " in sync and "features[2]" in sync
    last = aio.strip().splitlines()[-1]  # the chat reply itself spans lines
    assert last.count("[") == 2 and last.count("'") >= 8  # two rows of two product ids


def test_server_name_is_the_tls_name_checked(tmp_path, monkeypatch):
    from edge.certs import ensure_dev_secrets

    monkeypatch.delenv("RECOMMENDER_TOKEN", raising=False)
    certs = ensure_dev_secrets(tmp_path / "secrets")  # the server certificate names localhost, 127.0.0.1
    key_pair = [(certs.server_key.read_bytes(), certs.server_cert.read_bytes())]
    with fake_server(grpc.ssl_server_credentials(key_pair)) as (target, _):
        with RecommenderClient(target, ca_file=str(certs.ca_cert), server_name="localhost", max_attempts=1) as c:
            assert c.recommend(CUSTOMER).model_version == 7
        with RecommenderClient(target, ca_file=str(certs.ca_cert), server_name="shop.example", timeout=3,
                               max_attempts=1) as c:
            with pytest.raises(Unavailable):
                c.recommend(CUSTOMER)


def test_batch_requests_take_rows_flat_lists_and_arrays_and_check_their_shape():
    rows = [CUSTOMER, (70, 2, 0, 10, 2, 4)]
    expected = [float(v) for row in rows for v in row]
    assert list(batch_request(rows).features) == expected
    assert list(batch_request(expected).features) == expected
    assert list(batch_request(np.asarray(rows, dtype=np.float32)).features) == expected
    assert list(batch_request(texts=["a", "b"], top_k=2).texts) == ["a", "b"]
    with pytest.raises(ValueError, match="row 1 has 5 values"):
        batch_request([CUSTOMER, (1, 2, 3, 4, 5)])
    with pytest.raises(ValueError, match="N\\*6"):
        batch_request(expected[:-1])
    with pytest.raises(ValueError):
        batch_request(rows, texts=["a"])


def test_batch_result_rows_behave_like_arrays_where_the_batch_job_needs_it():
    reply = recommend_pb2.RecommendBatchResponse(
        model_version=3, top_k=2, rows=2, product_ids=["earbuds", "laptop"], product_names=["Earbuds", "Laptop"],
        product_names_ko=["이어폰", "노트북"], product_indices=[1, 0, -1, -1], scores=[0.75, 0.25, 0, 0],
        features=[0.0] * 12, errors=[recommend_pb2.RowError(row=1, field="features[2]", message="budget ...")])
    result = BatchResult.from_pb(reply, "rid")
    assert result.scores.tolist() == [[0.75, 0.25], [0.0, 0.0]]
    assert np.asarray(result.indices).shape == (2, 2) and np.asarray(result.features).shape == (2, 6)
    assert result.product_ids(0) == ["laptop", "earbuds"] and result.product_ids(1) == []
    assert [(i.rank, i.product_id, i.name_ko) for i in result.items(0)] == [(1, "laptop", "노트북"),
                                                                           (2, "earbuds", "이어폰")]
    assert result.errors == {1: "budget ..."} and result.error_fields == {1: "features[2]"}
    assert result.request_id == "rid"
