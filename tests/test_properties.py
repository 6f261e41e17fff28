"""Property-based tests (hypothesis): random and near-valid requests into every RPC of the
gateway and the inference server, both in this process on 127.0.0.1 (the inference server with
a stand-in model, so no TensorFlow). Whatever comes in, the answer is a well-formed status a
caller can act on, never INTERNAL or UNKNOWN, every INVALID_ARGUMENT names a field in its
google.rpc.BadRequest, and both servers keep answering.

Bounded: a fixed number of examples per property (the whole file runs in well under a minute).
"""

from __future__ import annotations

import asyncio
import threading

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recommender import schema
from recommender.settings import GatewaySettings, InferenceSettings
from recommender.v1 import chat_pb2, metadata_pb2, recommend_pb2, vectorize_pb2

EXAMPLES = 100
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# What a caller may get back. INTERNAL and UNKNOWN are bugs; UNAVAILABLE would mean a server
# fell over (both run here and stay up).
ACCEPTABLE = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
              grpc.StatusCode.RESOURCE_EXHAUSTED}


class StandInModel:
    """A model version with the default catalog whose probabilities depend on the row."""

    version = 1
    backend = "stand-in"
    catalog = schema.DEFAULT_CATALOG
    product_ids = list(schema.DEFAULT_CATALOG.product_ids)
    product_names = [p.name_en for p in schema.DEFAULT_CATALOG]
    product_names_ko = [p.name_ko for p in schema.DEFAULT_CATALOG]

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        logits = np.outer(np.asarray(matrix, dtype=np.float32)[:, 3] + 1, np.arange(10, dtype=np.float32) / 10)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


class InProcessServers:
    """Inference (stand-in model) and gateway servers on one event loop in a thread."""

    def __init__(self, tmp_path):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="servers")
        self.thread.start()
        self.tmp_path = tmp_path
        self.inference_port, self.gateway_port = self._run(self._start())

    def _run(self, coroutine, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    async def _start(self) -> tuple[int, int]:
        from gateway.server import GatewayServer
        from inference.batching import DynamicBatcher
        from inference.manager import ModelManager
        from inference.metrics import WorkerMetrics
        from inference.server import ModelPoller, build_server
        from recommender import serving

        config = InferenceSettings(models_dir=str(self.tmp_path), workers=1, metrics_port=0)
        manager = ModelManager(keep=2)
        manager.install(StandInModel())
        metrics = WorkerMetrics(0)
        batcher = DynamicBatcher(64, 0.001, on_batch=metrics.observe_batch)
        poller = ModelPoller(config, manager, metrics, 0)
        health = HealthServicer()
        self.inference = build_server(config, manager, batcher, metrics, poller, health)
        inference_port = serving.bind(self.inference, "127.0.0.1", 0, config)
        await self.inference.start()
        await health.set("", health_pb2.HealthCheckResponse.SERVING)

        gateway_settings = GatewaySettings(port=0, inference=f"127.0.0.1:{inference_port}", metrics_port=0,
                                           health_interval_s=0.5)
        self.gateway = GatewayServer(gateway_settings)
        gateway_port = await self.gateway.start()
        await self.gateway.watcher.check_once()
        return inference_port, gateway_port

    def stop(self) -> None:
        async def stop():
            await self.gateway.stop(0)
            await self.inference.stop(0)
        self._run(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    running = InProcessServers(tmp_path_factory.mktemp("properties"))
    channels = {
        "gateway": grpc.insecure_channel(f"127.0.0.1:{running.gateway_port}"),
        "inference": grpc.insecure_channel(f"127.0.0.1:{running.inference_port}"),
    }
    yield channels
    for channel in channels.values():
        channel.close()
    running.stop()


# ----------------------------------------------------------------------------- strategies

unicode_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80)
texts = st.one_of(
    unicode_text,
    st.from_regex(r"[0-9가-힣a-zA-Z ,.만원살세]{0,60}", fullmatch=True),
    st.sampled_from(["", " ", "\n", "가" * 2001, "9" * 400, "예산 " + "9" * 320 + "만원", "I'm " + "1" * 310,
                     "저는 30대 여성인데 운동할 때 쓸 거 찾아요. 예산은 30만원이에요", "🎁" * 2000]),
)
floats = st.one_of(
    st.floats(width=32),  # NaN, ±inf, subnormals, huge
    st.sampled_from([0.0, 1.0, 2.0, 4.0, 5.0, 10.0, 11.0, 35.0, 100.0, 101.0, 300_000.0, 1e9, 2e9, -1.0, 0.5]),
)
features = st.one_of(st.lists(floats, max_size=14), st.lists(floats, min_size=6, max_size=6))
int32 = st.one_of(st.integers(-2**31, 2**31 - 1), st.integers(-2, 12))
int64 = st.one_of(st.integers(-2**63, 2**63 - 1), st.integers(-1, 3))

recommend_requests = st.builds(
    recommend_pb2.RecommendRequest, features=features, text=st.one_of(st.just(""), texts),
    top_k=int32, model_version=int64)
batch_requests = st.builds(
    recommend_pb2.RecommendBatchRequest, features=st.lists(floats, max_size=30),
    texts=st.lists(texts, max_size=4), top_k=int32, model_version=int64)
states = st.builds(
    chat_pb2.ConversationState, features=features, asked=st.lists(int32, max_size=4), turn=int32,
    language=st.one_of(st.sampled_from(["", "ko", "en"]), unicode_text))
chat_requests = st.builds(chat_pb2.ChatRequest, text=texts, state=st.one_of(st.none(), states), top_k=int32)
vectorize_requests = st.builds(vectorize_pb2.VectorizeRequest, text=texts)
stream_requests = st.lists(st.builds(recommend_pb2.RecommendStreamRequest, batch=batch_requests),
                           min_size=1, max_size=3)

UNARY = {
    "/recommender.v1.RecommendService/Recommend": (recommend_pb2.RecommendRequest(features=[35, 1, 300_000, 2, 1, 0]),
                                                    recommend_pb2.RecommendResponse),
    "/recommender.v1.RecommendService/RecommendBatch": (
        recommend_pb2.RecommendBatchRequest(features=[35, 1, 300_000, 2, 1, 0] * 2, texts=[]),
        recommend_pb2.RecommendBatchResponse),
    "/recommender.v1.ChatService/Chat": (chat_pb2.ChatRequest(text="게임기 40만원"), chat_pb2.ChatResponse),
    "/recommender.v1.VectorizeService/Vectorize": (vectorize_pb2.VectorizeRequest(text="hi"),
                                                    vectorize_pb2.VectorizeResponse),
    "/recommender.v1.MetadataService/GetMetadata": (metadata_pb2.GetMetadataRequest(),
                                                     metadata_pb2.GetMetadataResponse),
}
INFERENCE_METHODS = ("/recommender.v1.RecommendService/Recommend", "/recommender.v1.RecommendService/RecommendBatch",
                     "/recommender.v1.MetadataService/GetMetadata")
STREAM = "/recommender.v1.RecommendService/RecommendStream"


def mutated(base: bytes):
    """Valid bytes with a few bytes replaced, inserted or cut off: near-valid wire data."""
    return st.tuples(st.lists(st.tuples(st.integers(0, max(0, len(base) - 1)), st.integers(0, 255)), max_size=4),
                     st.integers(0, len(base))).map(lambda edits: _apply(base, *edits))


def _apply(base: bytes, replacements, cut: int) -> bytes:
    data = bytearray(base)
    for index, value in replacements:
        if data:
            data[index % len(data)] = value
    return bytes(data[:cut]) if cut % 3 == 0 else bytes(data)


# ----------------------------------------------------------------------------- checks


def check_status(exc: grpc.RpcError | None) -> None:
    if exc is None:
        return
    code = exc.code()
    assert code in ACCEPTABLE, f"{code.name}: {exc.details()}"
    assert exc.details(), "a status without a message"
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        status = rpc_status.from_call(exc)
        assert status is not None, f"INVALID_ARGUMENT without details: {exc.details()}"
        bad_request = error_details_pb2.BadRequest()
        assert status.details and status.details[0].Unpack(bad_request), exc.details()
        assert bad_request.field_violations and bad_request.field_violations[0].field, exc.details()


def call_unary(channel: grpc.Channel, method: str, request) -> grpc.RpcError | None:
    serialize = request if isinstance(request, bytes) else request.SerializeToString()
    call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    try:
        call(serialize, timeout=30)
    except grpc.RpcError as exc:
        return exc
    return None


def call_stream(channel: grpc.Channel, messages: list) -> grpc.RpcError | None:
    call = channel.stream_stream(STREAM, request_serializer=None, response_deserializer=None)
    payloads = [m if isinstance(m, bytes) else m.SerializeToString() for m in messages]
    try:
        answers = list(call(iter(payloads), timeout=30))
    except grpc.RpcError as exc:
        return exc
    assert len(answers) == len(payloads)
    return None


# ----------------------------------------------------------------------------- properties


@PROPERTY
@given(request=recommend_requests)
def test_recommend_never_fails_internally(servers, request):
    for server in ("gateway", "inference"):
        check_status(call_unary(servers[server], "/recommender.v1.RecommendService/Recommend", request))


@PROPERTY
@given(request=batch_requests)
def test_batches_never_fail_internally_and_bad_rows_are_row_errors(servers, request):
    for server in ("gateway", "inference"):
        check_status(call_unary(servers[server], "/recommender.v1.RecommendService/RecommendBatch", request))
    # A batch of well-formed rows (any values) is never a failed call: bad rows are row errors.
    rows = len(request.features) // 6
    if rows:
        whole = recommend_pb2.RecommendBatchRequest(features=request.features[:rows * 6])
        call = servers["gateway"].unary_unary("/recommender.v1.RecommendService/RecommendBatch",
                                              request_serializer=recommend_pb2.RecommendBatchRequest.SerializeToString,
                                              response_deserializer=recommend_pb2.RecommendBatchResponse.FromString)
        answer = call(whole, timeout=30)
        assert answer.rows == rows
        assert all(e.field.startswith("features[") for e in answer.errors)


@PROPERTY
@given(request=chat_requests)
def test_chat_never_fails_internally(servers, request):
    check_status(call_unary(servers["gateway"], "/recommender.v1.ChatService/Chat", request))


@PROPERTY
@given(request=vectorize_requests)
def test_vectorize_never_fails_internally(servers, request):
    check_status(call_unary(servers["gateway"], "/recommender.v1.VectorizeService/Vectorize", request))


@settings(max_examples=EXAMPLES // 2, deadline=None, derandomize=True)
@given(messages=stream_requests)
def test_streams_never_fail_internally(servers, messages):
    for server in ("gateway", "inference"):
        check_status(call_stream(servers[server], messages))


@PROPERTY
@given(data=st.data())
def test_random_and_mutated_bytes_into_every_method(servers, data):
    method = data.draw(st.sampled_from(sorted(UNARY)))
    valid, _ = UNARY[method]
    payload = data.draw(st.one_of(st.binary(max_size=200), mutated(valid.SerializeToString())))
    check_status(call_unary(servers["gateway"], method, payload))
    if method in INFERENCE_METHODS:
        check_status(call_unary(servers["inference"], method, payload))
    stream_payload = data.draw(st.one_of(st.binary(max_size=100), mutated(recommend_pb2.RecommendStreamRequest(
        batch=recommend_pb2.RecommendBatchRequest(texts=["a", "b"])).SerializeToString())))
    check_status(call_stream(servers[data.draw(st.sampled_from(["gateway", "inference"]))], [stream_payload]))


def test_servers_still_answer_after_the_properties(servers):
    for server, methods in (("gateway", sorted(UNARY)), ("inference", INFERENCE_METHODS)):
        for method in methods:
            request, response_type = UNARY[method]
            call = servers[server].unary_unary(method, request_serializer=type(request).SerializeToString,
                                               response_deserializer=response_type.FromString)
            assert call(request, timeout=30) is not None
