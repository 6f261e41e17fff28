"""The gateway as a real process in front of a real inference server (trained model from the
session fixture): every RPC end to end, bad input, health, reflection, metrics, deadlines,
an unreachable backend, and a graceful stop."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from recommender import schema
from recommender.v1 import (
    chat_pb2,
    chat_pb2_grpc,
    common_pb2,
    recommend_pb2,
    recommend_pb2_grpc,
    vectorize_pb2,
    vectorize_pb2_grpc,
)
from tests.support import PYTHON, ROOT, ServerProcess, free_port, free_port_block, wait_for_health

pytestmark = pytest.mark.slow

KOREAN = "저는 30대 여성인데 제가 운동할 때 쓸 거 추천해 주세요. 예산은 30만원이에요"
ENGLISH = "A gift for my dad, he is in his sixties and has back pain, up to 300,000 won"


def start_gateway(tmp_path, inference: str, name: str = "gateway", extra: list[str] | None = None):
    port, metrics_port = free_port(), free_port()
    process = ServerProcess(
        [PYTHON, "-m", "gateway", "serve", "--port", str(port), "--inference", inference,
         "--metrics-port", str(metrics_port), *(extra or [])],
        tmp_path / f"{name}.log",
    ).start()
    return process, port, metrics_port


@pytest.fixture(scope="module")
def stack(tmp_path_factory, inference_target):
    """The session's shared inference server (tests/conftest.py) + this module's own gateway (its
    metrics and log are read here), a real process stopped after the module."""
    logs = tmp_path_factory.mktemp("gateway_stack")
    gateway, port, metrics_port = start_gateway(logs, inference_target)
    try:
        wait_for_health(f"127.0.0.1:{port}", timeout=60, process=gateway.process)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        yield {"channel": channel, "port": port, "metrics_port": metrics_port,
               "inference_port": int(inference_target.rsplit(":", 1)[1]), "gateway": gateway}
        channel.close()
    finally:
        gateway.stop()


@pytest.fixture
def recommend(stack):
    return recommend_pb2_grpc.RecommendServiceStub(stack["channel"])


def vectorize(stack, text: str) -> vectorize_pb2.VectorizeResponse:
    stub = vectorize_pb2_grpc.VectorizeServiceStub(stack["channel"])
    return stub.Vectorize(vectorize_pb2.VectorizeRequest(text=text), timeout=10)


def test_vectorize_reads_korean_text(stack):
    reply = vectorize(stack, KOREAN)
    assert list(reply.features)[:4] == [35, 1, 300_000, 2]
    assert reply.slots.gender == common_pb2.GENDER_FEMALE
    assert reply.slots.interest == common_pb2.INTEREST_FITNESS
    assert common_pb2.SLOT_SEASON in reply.unstated_slots
    assert common_pb2.SLOT_AGE not in reply.unstated_slots
    assert reply.vectorizer == common_pb2.VECTORIZER_LOCAL
    assert reply.language == "ko"


def test_recommend_with_features_forwards_the_vector(recommend):
    features = [35, 1, 300_000, 2, 1, 0]
    reply = recommend.Recommend(recommend_pb2.RecommendRequest(features=features, top_k=4), timeout=10)
    assert reply.model_version == 1
    assert len(reply.items) == 4
    assert [item.rank for item in reply.items] == [1, 2, 3, 4]
    assert all(item.product_id in schema.DEFAULT_CATALOG.product_ids for item in reply.items)
    scores = [item.score for item in reply.items]
    assert scores == sorted(scores, reverse=True)
    assert list(reply.features) == features
    assert reply.slots.budget == 300_000
    assert reply.vectorizer == common_pb2.VECTORIZER_UNSPECIFIED


def test_recommend_with_text_vectorizes_then_scores(stack, recommend):
    reply = recommend.Recommend(recommend_pb2.RecommendRequest(text=ENGLISH), timeout=10)
    expected = list(vectorize(stack, ENGLISH).features)
    assert list(reply.features) == expected
    assert reply.vectorizer == common_pb2.VECTORIZER_LOCAL
    assert len(reply.items) == schema.DEFAULT_TOP_K
    # Same vector sent as features gives the same ranking: the text path adds nothing else.
    direct = recommend.Recommend(recommend_pb2.RecommendRequest(features=expected), timeout=10)
    assert [i.product_id for i in reply.items] == [i.product_id for i in direct.items]


def test_concurrent_recommends_match_inference_answers(stack, recommend):
    """Concurrent single calls are coalesced into batch calls to inference: every caller
    still gets exactly the answer inference gives for its own vector (items, names, scores)."""
    vectors = [[age, gender, budget, interest, purpose, season]
               for age, gender, budget, interest, purpose, season in zip(
                   [0, 15, 25, 35, 45, 55, 65, 75] * 8, [0, 1, 2, 1] * 16,
                   [0, 100_000, 300_000, 500_000, 1_500_000, 2_000_000, 50_000, 800_000] * 8,
                   list(range(11)) * 6, [0, 1, 2] * 22, [0, 1, 2, 3, 4] * 13, strict=False)]
    with grpc.insecure_channel(f"127.0.0.1:{stack['inference_port']}") as direct_channel:
        direct = recommend_pb2_grpc.RecommendServiceStub(direct_channel)
        expected = [direct.Recommend(recommend_pb2.RecommendRequest(features=v, top_k=4), timeout=10)
                    for v in vectors]
    for _ in range(2):  # a cold and a warm gateway
        with futures.ThreadPoolExecutor(32) as pool:
            got = list(pool.map(lambda v: recommend.Recommend(
                recommend_pb2.RecommendRequest(features=v, top_k=4), timeout=20), vectors))
        for want, answer in zip(expected, got, strict=True):
            assert [(i.product_id, i.name, i.name_ko, i.rank) for i in answer.items] == \
                [(i.product_id, i.name, i.name_ko, i.rank) for i in want.items]
            assert [i.score for i in answer.items] == pytest.approx([i.score for i in want.items], abs=1e-5)
            assert list(answer.features) == list(want.features)
            assert answer.slots == want.slots and answer.model_version == want.model_version


def test_batch_of_vectors_reports_bad_rows_by_index(recommend):
    rows = [[35, 1, 300_000, 2, 1, 0], [25, 2, -5, 5, 1, 4], [0, 0, 0, 0, 0, 0]]
    reply = recommend.RecommendBatch(
        recommend_pb2.RecommendBatchRequest(features=[v for r in rows for v in r], top_k=2), timeout=10)
    assert (reply.rows, reply.top_k) == (3, 2)
    assert [e.row for e in reply.errors] == [1]
    assert "budget" in reply.errors[0].message
    assert list(reply.product_indices[2:4]) == [-1, -1]
    assert all(0 <= i < len(reply.product_ids) for i in reply.product_indices[:2])


def test_batch_of_texts_is_one_forward_with_row_errors_remapped(stack, recommend):
    texts = [KOREAN, "", ENGLISH, "x" * 2001, "안녕하세요"]
    reply = recommend.RecommendBatch(recommend_pb2.RecommendBatchRequest(texts=texts, top_k=3), timeout=20)
    assert reply.rows == 5 and reply.top_k == 3
    assert reply.vectorizer == common_pb2.VECTORIZER_LOCAL
    assert [e.row for e in reply.errors] == [1, 3]
    assert "empty" in reply.errors[0].message and "2000" in reply.errors[1].message
    indices = list(reply.product_indices)
    for row, text in enumerate(texts):
        got = indices[row * 3:(row + 1) * 3]
        if row in (1, 3):
            assert got == [-1, -1, -1]
            assert list(reply.features[row * 6:(row + 1) * 6]) == [0] * 6
            continue
        single = recommend.Recommend(recommend_pb2.RecommendRequest(text=text), timeout=10)
        assert [reply.product_ids[i] for i in got] == [item.product_id for item in single.items]
        assert list(reply.features[row * 6:(row + 1) * 6]) == list(single.features)


def test_stream_answers_each_message_in_order(recommend):
    batches = [
        recommend_pb2.RecommendBatchRequest(features=[35, 1, 300_000, 2, 1, 0] * 3),
        recommend_pb2.RecommendBatchRequest(texts=[KOREAN, ""]),
        recommend_pb2.RecommendBatchRequest(texts=[" "]),  # nothing valid: answered by the gateway
        recommend_pb2.RecommendBatchRequest(texts=[ENGLISH], top_k=5),
    ]
    messages = [recommend_pb2.RecommendStreamRequest(batch=b) for b in batches]
    replies = [r.batch for r in recommend.RecommendStream(iter(messages), timeout=30)]
    assert [r.rows for r in replies] == [3, 2, 1, 1]
    assert [r.top_k for r in replies] == [3, 3, 3, 5]
    assert [[e.row for e in r.errors] for r in replies] == [[], [1], [0], []]
    assert replies[1].vectorizer == common_pb2.VECTORIZER_LOCAL
    assert list(replies[2].product_indices) == [-1, -1, -1]
    assert min(replies[3].product_indices) >= 0


def test_stream_with_a_malformed_message_ends_with_invalid_argument(recommend):
    messages = [recommend_pb2.RecommendStreamRequest(batch=recommend_pb2.RecommendBatchRequest(features=[0] * 6)),
                recommend_pb2.RecommendStreamRequest(batch=recommend_pb2.RecommendBatchRequest(features=[0] * 5))]
    got = []
    with pytest.raises(grpc.RpcError) as raised:
        for reply in recommend.RecommendStream(iter(messages), timeout=30):
            got.append(reply)
    assert len(got) == 1  # the good message before it was still answered
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "stream message 1" in raised.value.details() and "N*6" in raised.value.details()


@pytest.mark.parametrize(("request_", "phrase"), [
    (recommend_pb2.RecommendRequest(text=""), "text must not be empty"),
    (recommend_pb2.RecommendRequest(text="   "), "text must not be empty"),
    (recommend_pb2.RecommendRequest(text="가" * 2001), "at most 2000 characters"),
    (recommend_pb2.RecommendRequest(features=[35, 1, -5, 2, 1, 0]), "features[2] budget"),
    (recommend_pb2.RecommendRequest(features=[35, 3, 0, 2, 1, 0]), "features[1] gender"),
    (recommend_pb2.RecommendRequest(features=[35, 1, 0]), "exactly 6 values"),
    (recommend_pb2.RecommendRequest(features=[float("nan"), 1, 0, 2, 1, 0]), "finite"),
    (recommend_pb2.RecommendRequest(features=[35, 1, 0, 2, 1, 0], top_k=1000), "top_k"),
    (recommend_pb2.RecommendRequest(features=[35, 1, 0, 2, 1, 0], top_k=-1), "top_k"),
    (recommend_pb2.RecommendRequest(features=[35, 1, 0, 2, 1, 0], text="hi"), "exactly one"),
])
def test_bad_recommend_input_is_invalid_argument_naming_the_problem(recommend, request_, phrase):
    with pytest.raises(grpc.RpcError) as raised:
        recommend.Recommend(request_, timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert phrase in raised.value.details()


@pytest.mark.parametrize(("request_", "phrase"), [
    (recommend_pb2.RecommendBatchRequest(features=[0] * 7), "N*6"),
    (recommend_pb2.RecommendBatchRequest(texts=["a"], top_k=11), "top_k"),
    (recommend_pb2.RecommendBatchRequest(texts=["a"] * 1001), "at most 1000 texts"),
    (recommend_pb2.RecommendBatchRequest(), "exactly one of features"),
])
def test_bad_batch_input_is_invalid_argument(recommend, request_, phrase):
    with pytest.raises(grpc.RpcError) as raised:
        recommend.RecommendBatch(request_, timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert phrase in raised.value.details()


def test_vectorize_rejects_empty_and_long_text(stack):
    for text, phrase in (("", "empty"), ("a" * 2001, "2000")):
        with pytest.raises(grpc.RpcError) as raised:
            vectorize(stack, text)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert phrase in raised.value.details()


@pytest.mark.parametrize("method", [
    "/recommender.v1.VectorizeService/Vectorize",
    "/recommender.v1.RecommendService/Recommend",
    "/recommender.v1.ChatService/Chat",
])
def test_text_that_is_not_utf8_is_invalid_argument(stack, method):
    # Field 1 (text) of VectorizeRequest/ChatRequest, field 2 (text) of RecommendRequest,
    # written by hand because protobuf refuses to serialize such a string.
    field = 2 if method.endswith("/Recommend") else 1
    raw = bytes([field << 3 | 2, 4]) + b"\xff\xfe\xfa\x80"
    call = stack["channel"].unary_unary(method, request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as raised:
        call(raw, timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "UTF-8" in raised.value.details()
    # The gateway keeps answering.
    assert vectorize(stack, "hello").features == [0.0] * 6


def test_undecodable_stream_message_is_invalid_argument(stack):
    inner = bytes([2 << 3 | 2, 2]) + b"\xff\xfe"  # RecommendBatchRequest.texts[0]
    raw = bytes([1 << 3 | 2, len(inner)]) + inner  # RecommendStreamRequest.batch
    call = stack["channel"].stream_stream("/recommender.v1.RecommendService/RecommendStream",
                                          request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as raised:
        list(call(iter([raw]), timeout=10))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "UTF-8" in raised.value.details()


def test_chat_turn_through_the_gateway_recommends(stack):
    stub = chat_pb2_grpc.ChatServiceStub(stack["channel"])
    reply = stub.Chat(chat_pb2.ChatRequest(text=KOREAN), timeout=10)
    assert reply.reply
    assert reply.items and reply.model_version == 1
    assert reply.state.turn == 1 and list(reply.state.features)[:4] == [35, 1, 300_000, 2]
    assert reply.vectorizer == common_pb2.VECTORIZER_LOCAL


def test_health_and_reflection(stack):
    channel = stack["channel"]
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "recommender.v1.RecommendService", "recommender.v1.ChatService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    answer = next(reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5))
    names = {s.name for s in answer.list_services_response.service}
    assert {"recommender.v1.VectorizeService", "recommender.v1.RecommendService",
            "recommender.v1.ChatService", "grpc.health.v1.Health"} <= names


def test_metrics_count_rpcs_and_vectorizers(stack, recommend):
    recommend.Recommend(recommend_pb2.RecommendRequest(text=KOREAN), timeout=10)
    with pytest.raises(grpc.RpcError):
        recommend.Recommend(recommend_pb2.RecommendRequest(text=""), timeout=10)
    url = f"http://127.0.0.1:{stack['metrics_port']}/metrics"
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    assert 'gateway_rpcs_total{code="OK",method="Recommend"}' in text
    assert 'gateway_rpcs_total{code="INVALID_ARGUMENT",method="Recommend"}' in text
    assert 'gateway_vectorized_total{vectorizer="local"}' in text
    assert "gateway_rpc_latency_seconds_bucket" in text
    assert "gateway_inference_backend_up 1.0" in text


def test_customer_text_stays_out_of_info_logs(stack, recommend):
    secret = "비밀스러운 문장 30대 여성 운동"
    recommend.Recommend(recommend_pb2.RecommendRequest(text=secret), timeout=10)
    chat_pb2_grpc.ChatServiceStub(stack["channel"]).Chat(chat_pb2.ChatRequest(text=secret), timeout=10)
    assert "비밀스러운" not in stack["gateway"].log()


# ------------------------------------------------------------------ backend down / deadlines


def first_health_status(channel, attempts: int = 100) -> int | None:
    """The first answer of grpc.health.v1 Check once the process answers at all."""
    health = health_pb2_grpc.HealthStub(channel)
    for _ in range(attempts):
        try:
            return health.Check(health_pb2.HealthCheckRequest(), timeout=1).status
        except grpc.RpcError:
            time.sleep(0.1)
    return None


def test_inference_down_is_unavailable_fast_and_health_not_serving(tmp_path):
    dead = free_port()  # nothing listens here
    gateway, port, _ = start_gateway(tmp_path, f"127.0.0.1:{dead}", name="gateway-down")
    try:
        target = f"127.0.0.1:{port}"
        with grpc.insecure_channel(target) as channel:
            assert first_health_status(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
            stub = recommend_pb2_grpc.RecommendServiceStub(channel)
            with pytest.raises(grpc.RpcError) as raised:
                # a generous deadline: failing fast means failing long before it
                stub.Recommend(recommend_pb2.RecommendRequest(features=[35, 1, 0, 2, 1, 0]), timeout=30)
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "inference server unavailable" in raised.value.details()
            assert f"127.0.0.1:{dead}" in raised.value.details()
            # bad input is still answered as such without a backend
            with pytest.raises(grpc.RpcError) as raised:
                stub.Recommend(recommend_pb2.RecommendRequest(text=""), timeout=30)
            assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        gateway.stop()


def test_gateway_started_before_inference_turns_serving_when_it_comes_up(tmp_path, trained_models_dir):
    inference_port = free_port_block(2)  # shared port + worker 0's own port
    gateway, port, _ = start_gateway(tmp_path, f"127.0.0.1:{inference_port + 1}", name="gateway-early")
    inference = None
    try:
        target = f"127.0.0.1:{port}"
        with grpc.insecure_channel(target) as channel:
            assert first_health_status(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
            inference = ServerProcess(
                [PYTHON, "-m", "inference", "--models-dir", str(trained_models_dir),
                 "--port", str(inference_port), "--workers", "1", "--metrics-port", "0"],
                tmp_path / "inference-late.log").start()
            wait_for_health(target, timeout=180, process=gateway.process)
            reply = recommend_pb2_grpc.RecommendServiceStub(channel).Recommend(
                recommend_pb2.RecommendRequest(features=[35, 1, 300_000, 2, 1, 0]), timeout=30)
            assert reply.items and reply.model_version == 1
    finally:
        gateway.stop()
        if inference is not None:
            inference.stop()


class DeadlineRecordingBackend(recommend_pb2_grpc.RecommendServiceServicer):
    """A stand-in inference server (in this test process) that records the time left on
    each call it receives: what the gateway handed on as the deadline."""

    def __init__(self):
        self.remaining: list[float] = []
        self.server = grpc.server(futures.ThreadPoolExecutor(4))
        recommend_pb2_grpc.add_RecommendServiceServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def Recommend(self, request, context):
        self.remaining.append(context.time_remaining())
        return recommend_pb2.RecommendResponse(model_version=1, features=request.features)


def test_client_deadline_is_propagated_to_the_backend_call(tmp_path):
    """Each try towards inference gets the smaller of the caller's time left and the per-try
    budget (--backend-try-timeout-s), so a silent worker costs one try, not the whole call."""
    backend = DeadlineRecordingBackend()
    gateway, port, _ = start_gateway(tmp_path, f"127.0.0.1:{backend.port}", name="gateway-deadline",
                                     extra=["--backend-try-timeout-s", "3", "--coalesce-in-flight", "0"])
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            stub = recommend_pb2_grpc.RecommendServiceStub(channel)
            request = recommend_pb2.RecommendRequest(features=[35, 1, 0, 2, 1, 0])
            stub.Recommend(request, timeout=1.5)  # the caller's deadline is the tighter bound
            stub.Recommend(request, timeout=30)  # the try budget is
            stub.Recommend(request)  # no client deadline: the try budget still bounds each try
        with_deadline, long_deadline, without = backend.remaining
        # grpc sends timeouts rounded up to its wire units, hence the small margins
        assert 0 < with_deadline <= 1.6
        assert 2 < long_deadline <= 3.1
        assert 2 < without <= 3.1
    finally:
        gateway.stop()
        backend.server.stop(0)


def test_sigterm_stops_the_gateway_gracefully(tmp_path):
    gateway, port, _ = start_gateway(tmp_path, f"127.0.0.1:{free_port()}", name="gateway-term")
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
    assert gateway.stop() == 0
    assert "event=gateway_stopped" in gateway.log()


def test_print_prompt_prints_the_bedrock_prompt():
    out = subprocess.run([PYTHON, "-m", "gateway", "print-prompt"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert len(out) > 200
    for slot in schema.SLOT_NAMES:
        assert slot in out


def test_gateway_never_imports_tensorflow():
    code = ("import sys, gateway.server, gateway.cli, clients.stack; "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([PYTHON, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=True).stdout.strip()
    assert out == "False"


# ------------------------------------------------------------------ structured errors (issue 10 item 3)


def field_violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    status = rpc_status.from_call(error)
    assert status is not None, f"no google.rpc.Status details: {error.details()}"
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    return [(v.field, v.description) for v in bad_request.field_violations]


@pytest.mark.parametrize(("request_", "field"), [
    (recommend_pb2.RecommendRequest(features=[35, 1, -5, 2, 1, 0]), "features[2]"),
    (recommend_pb2.RecommendRequest(text=""), "text"),
    (recommend_pb2.RecommendRequest(features=[35, 1, 0, 2, 1, 0], top_k=11), "top_k"),
])
def test_invalid_argument_names_the_field_in_a_bad_request(recommend, request_, field):
    with pytest.raises(grpc.RpcError) as raised:
        recommend.Recommend(request_, timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(raised.value) == [(field, raised.value.details())]


def test_inference_field_violations_pass_through_the_gateway(stack):
    """A pinned batch checked by inference: the gateway passes its BadRequest on unchanged."""
    with grpc.insecure_channel(f"127.0.0.1:{stack['inference_port']}") as channel:
        direct = recommend_pb2_grpc.RecommendServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            direct.Recommend(recommend_pb2.RecommendRequest(features=[35, 1, 0, 2, 1, 7]), timeout=10)
    assert field_violations(raised.value)[0][0] == "features[5]"


def test_batch_row_errors_carry_the_field(recommend):
    rows = [[35, 1, 300_000, 2, 1, 0], [25, 2, -5, 5, 1, 4]]
    reply = recommend.RecommendBatch(
        recommend_pb2.RecommendBatchRequest(features=[v for r in rows for v in r]), timeout=10)
    assert [(e.row, e.field) for e in reply.errors] == [(1, "features[2]")]
    assert reply.errors[0].message.startswith("features[2] budget must be between 0 and 1e9 KRW")
    texts = recommend.RecommendBatch(recommend_pb2.RecommendBatchRequest(texts=[KOREAN, " "]), timeout=10)
    assert [(e.row, e.field, e.message) for e in texts.errors] == [(1, "texts[1]", "text must not be empty")]


def test_coalesced_row_error_reads_like_a_single_call(recommend):
    """Concurrent bad vectors go out in one coalesced batch; each caller still gets the message
    and field of its own vector (structured row errors, no text rewriting)."""
    bad = recommend_pb2.RecommendRequest(features=[35, 1, -5, 2, 1, 0])

    def call(_):
        try:
            recommend.Recommend(bad, timeout=20)
        except grpc.RpcError as exc:
            return exc.code(), exc.details(), field_violations(exc)[0][0]
        return None

    with futures.ThreadPoolExecutor(16) as pool:
        results = set(pool.map(call, range(32)))
    assert results == {(grpc.StatusCode.INVALID_ARGUMENT,
                        "features[2] budget must be between 0 and 1e9 KRW, got -5", "features[2]")}


@pytest.mark.parametrize(("state", "field"), [
    (chat_pb2.ConversationState(turn=2**31 - 1), "state.turn"),  # was "Value out of range: 2147483648"
    (chat_pb2.ConversationState(asked=[42]), "state.asked[0]"),
    (chat_pb2.ConversationState(features=[0, 0, 0, 0, 0, 9]), "state.features[5]"),
])
def test_chat_state_out_of_range_names_the_field(stack, state, field):
    stub = chat_pb2_grpc.ChatServiceStub(stack["channel"])
    with pytest.raises(grpc.RpcError) as raised:
        stub.Chat(chat_pb2.ChatRequest(text="게임기 추천해 주세요", state=state), timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in raised.value.details() and field_violations(raised.value)[0][0] == field
