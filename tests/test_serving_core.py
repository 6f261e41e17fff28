"""The serving core shared by gateway and inference, without servers: settings (flags, env,
defaults meet once), the error hierarchy and its one mapping to a status, the servicer wrapper
(a bug is INTERNAL with one log line), lenient decoding naming the field, chat state checks."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from gateway import cli as gateway_cli
from gateway.chat.dialogue import MAX_TURN, validate_state
from inference import cli as inference_cli
from recommender import errors, schema, serving, settings
from recommender.request_decoding import UndecodableRequest, lenient_decoder
from recommender.v1 import chat_pb2, recommend_pb2

# ----------------------------------------------------------------------------- settings


def test_gateway_flags_env_and_defaults_meet_once(monkeypatch):
    monkeypatch.delenv("GATEWAY_CACHE_SIZE", raising=False)
    defaults = gateway_cli.build_parser().parse_args(["serve"])
    assert settings.GatewaySettings.from_args(defaults) == settings.GatewaySettings()
    assert settings.GatewaySettings().cache_size == settings.DEFAULT_CACHE_SIZE == 4096
    monkeypatch.setenv("GATEWAY_CACHE_SIZE", "77")
    monkeypatch.setenv("GATEWAY_BACKEND_TRY_TIMEOUT_S", "0.5")
    monkeypatch.setenv("GATEWAY_INSECURE", "true")
    from_env = settings.GatewaySettings.from_args(gateway_cli.build_parser().parse_args(["serve"]))
    assert (from_env.cache_size, from_env.backend_try_timeout_s, from_env.insecure) == (77, 0.5, True)
    flagged = settings.GatewaySettings.from_args(gateway_cli.build_parser().parse_args(
        ["serve", "--cache-size", "5", "--no-insecure", "--grace", "2"]))
    assert (flagged.cache_size, flagged.insecure, flagged.grace_s) == (5, False, 2.0)  # flag > env


# Every flag the README lists for the servers (the flag tables), with a value to parse.
GATEWAY_FLAGS = {
    "--port": ("1234", "port", 1234), "--host": ("0.0.0.0", "host", "0.0.0.0"),
    "--inference": ("h:1,h:2", "inference", "h:1,h:2"), "--vectorizer": ("bedrock-converse", "vectorizer", "bedrock-converse"),
    "--fallback": ("none", "fallback", "none"), "--bedrock-config": ("f.json", "bedrock_config", "f.json"),
    "--model-id": ("m", "model_id", "m"), "--bedrock-timeout": ("3", "bedrock_timeout_s", 3.0),
    "--region": ("eu-west-1", "region", "eu-west-1"), "--endpoint-url": ("http://x", "endpoint_url", "http://x"),
    "--cache-size": ("9", "cache_size", 9), "--metrics-port": ("0", "metrics_port", 0),
    "--threads": ("3", "threads", 3), "--coalesce-in-flight": ("0", "coalesce_in_flight", 0),
    "--grace": ("1.5", "grace_s", 1.5), "--backend-timeout-s": ("7", "backend_timeout_s", 7.0),
    "--backend-try-timeout-s": ("0.3", "backend_try_timeout_s", 0.3),
    "--health-interval-s": ("0.2", "health_interval_s", 0.2), "--dns-refresh-s": ("5", "dns_refresh_s", 5.0),
    "--max-receive-bytes": ("1000", "max_receive_bytes", 1000),
    "--max-concurrent-rpcs": ("10", "max_concurrent_rpcs", 10), "--max-streams": ("3", "max_streams", 3),
    "--stream-idle-timeout-s": ("2", "stream_idle_timeout_s", 2.0),
    "--stream-max-duration-s": ("9", "stream_max_duration_s", 9.0),
}
INFERENCE_FLAGS = {
    "--models-dir": ("m", "models_dir", "m"), "--port": ("9", "port", 9), "--workers": ("3", "workers", 3),
    "--metrics-port": ("0", "metrics_port", 0), "--poll-interval-s": ("2", "poll_interval_s", 2.0),
    "--max-batch-size": ("8", "max_batch_size", 8), "--batch-timeout-ms": ("0", "batch_timeout_ms", 0.0),
    "--backend": ("tflite", "backend", "tflite"), "--drain-timeout-s": ("1", "drain_timeout_s", 1.0),
    "--max-receive-bytes": ("1000", "max_receive_bytes", 1000),
    "--max-concurrent-rpcs": ("10", "max_concurrent_rpcs", 10), "--max-streams": ("3", "max_streams", 3),
    "--stream-idle-timeout-s": ("2", "stream_idle_timeout_s", 2.0),
    "--stream-max-duration-s": ("9", "stream_max_duration_s", 9.0),
}


@pytest.mark.parametrize("flag", sorted(GATEWAY_FLAGS))
def test_every_gateway_flag_reaches_the_settings(flag):
    value, field, expected = GATEWAY_FLAGS[flag]
    parsed = settings.GatewaySettings.from_args(gateway_cli.build_parser().parse_args(["serve", flag, value]))
    assert getattr(parsed, field) == expected


def test_batch_adaptive_is_on_by_default_and_can_be_turned_off():
    parse = inference_cli.build_parser().parse_args
    assert settings.InferenceSettings.from_args(parse([])).batch_adaptive is True
    assert settings.InferenceSettings.from_args(parse(["--no-batch-adaptive"])).batch_adaptive is False


@pytest.mark.parametrize("flag", sorted(INFERENCE_FLAGS))
def test_every_inference_flag_reaches_the_settings(flag):
    value, field, expected = INFERENCE_FLAGS[flag]
    parsed = settings.InferenceSettings.from_args(inference_cli.build_parser().parse_args([flag, value]))
    assert getattr(parsed, field) == expected


def test_readme_lists_every_server_flag():
    from tests.support import ROOT

    readme = (ROOT / "README.md").read_text()
    for flag in {*GATEWAY_FLAGS, *INFERENCE_FLAGS}:
        assert f"`{flag}" in readme, flag


def test_inference_env_names_and_port_formula(monkeypatch):
    monkeypatch.setenv("WORKERS", "3")
    monkeypatch.setenv("INFERENCE_PORT", "9000")
    monkeypatch.setenv("INFERENCE_MAX_STREAMS", "5")
    s = settings.InferenceSettings.from_env()
    assert (s.workers, s.port, s.max_streams) == (3, 9000, 5)
    assert s.worker_ports() == [9001, 9002, 9003] == settings.worker_ports(9000, 3)
    assert settings.worker_addresses(9000, 2) == "127.0.0.1:9001,127.0.0.1:9002"
    assert 1 <= settings.default_workers() <= settings.MAX_DEFAULT_WORKERS
    monkeypatch.setenv("WORKERS", "many")
    with pytest.raises(ValueError, match="WORKERS must be a int"):
        settings.InferenceSettings.from_env()


def test_receive_limit_covers_the_largest_legitimate_request():
    largest = recommend_pb2.RecommendBatchRequest(texts=["🎁" * schema.MAX_TEXT_CHARS] * schema.MAX_BATCH_TEXTS)
    assert largest.ByteSize() < settings.MAX_REQUEST_BYTES
    rows = recommend_pb2.RecommendBatchRequest(features=[1e9] * 6 * schema.MAX_BATCH_ROWS)
    assert rows.ByteSize() < settings.MAX_REQUEST_BYTES


# ----------------------------------------------------------------------------- errors


def test_invalid_argument_carries_a_bad_request_naming_the_field():
    with pytest.raises(schema.InvalidFeatures) as raised:
        schema.validate_features([35, 1, -5, 2, 1, 0])
    code, message, details = errors.status_of(raised.value)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and message.startswith("features[2] budget")
    bad_request = error_details_pb2.BadRequest()
    assert details[0].Unpack(bad_request)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [("features[2]", message)]
    metadata = dict(errors.trailing_metadata(code, message, details))
    status = status_pb2.Status.FromString(metadata[errors.STATUS_DETAILS_KEY])
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0] and status.message == message


@pytest.mark.parametrize(("raise_", "code", "field"), [
    (lambda: schema.validate_text(""), grpc.StatusCode.INVALID_ARGUMENT, "text"),
    (lambda: schema.resolve_top_k(11), grpc.StatusCode.INVALID_ARGUMENT, "top_k"),
    (lambda: schema.validate_features([1, 2]), grpc.StatusCode.INVALID_ARGUMENT, "features"),
    (lambda: schema.validate_features([0, 9, 0, 0, 0, 0], prefix="state.features"),
     grpc.StatusCode.INVALID_ARGUMENT, "state.features[1]"),
])
def test_schema_errors_are_typed_with_their_field(raise_, code, field):
    with pytest.raises(errors.ServiceError) as raised:
        raise_()
    assert raised.value.code == code and raised.value.field == field


def test_a_plain_value_error_is_a_bug_not_bad_input():
    code, message, details = errors.status_of(ValueError("Value out of range: 2147483648"))
    assert code == grpc.StatusCode.INTERNAL and "2147483648" not in message and not details


def test_backend_errors_pass_through_with_code_and_details():
    inner = errors.InvalidArgument("features[2] budget must be ...", field="features[2]")
    code, message, details = errors.status_of(inner)
    raw = errors.trailing_metadata(code, message, details)

    class Rpc(grpc.RpcError):
        def code(self):
            return grpc.StatusCode.INVALID_ARGUMENT

        def details(self):
            return message

        def trailing_metadata(self):
            return raw

    passed = errors.BackendError.from_rpc_error(Rpc())
    assert errors.status_of(passed) == (code, message, details)


class FakeContext:
    def __init__(self):
        self.aborted = None

    async def abort(self, code, message, trailing_metadata=()):
        self.aborted = (code, message, dict(trailing_metadata))
        raise grpc.aio.AbortError()

    def code(self):
        return self.aborted[0] if self.aborted else None


class Servicer:
    def __init__(self):
        self.recorded = []

    def record(self, method, code, seconds):
        self.recorded.append((method, code))

    @serving.unary("Broken")
    async def Broken(self, request, context):
        return {}["missing"]  # a bug

    @serving.unary("Bad")
    async def Bad(self, request, context):
        schema.resolve_top_k(request.top_k)


def test_a_bug_is_internal_with_one_log_line_and_no_traceback(caplog):
    servicer, context = Servicer(), FakeContext()
    with caplog.at_level(logging.INFO, logger="recommender.errors"), pytest.raises(grpc.aio.AbortError):
        asyncio.run(servicer.Broken(recommend_pb2.RecommendRequest(), context))
    assert context.aborted[0] == grpc.StatusCode.INTERNAL and "KeyError" in context.aborted[1]
    assert servicer.recorded == [("Broken", grpc.StatusCode.INTERNAL)]
    lines = [r for r in caplog.records if r.name == "recommender.errors"]
    assert len(lines) == 1 and lines[0].exc_info is None
    assert "event=internal_error" in lines[0].getMessage() and "test_serving_core.py" in lines[0].getMessage()


def test_wrapper_maps_typed_errors_and_undecodable_requests():
    servicer = Servicer()
    context = FakeContext()
    with pytest.raises(grpc.aio.AbortError):
        asyncio.run(servicer.Bad(recommend_pb2.RecommendRequest(top_k=99), context))
    assert context.aborted[0] == grpc.StatusCode.INVALID_ARGUMENT and errors.STATUS_DETAILS_KEY in context.aborted[2]
    context = FakeContext()
    with pytest.raises(grpc.aio.AbortError):
        asyncio.run(servicer.Bad(UndecodableRequest("x.Y", "bad", "texts[3]"), context))
    assert context.aborted[1].startswith("texts[3] must be valid UTF-8")


def test_lenient_decoding_names_the_string_field_that_is_not_utf8():
    inner = bytes([2 << 3 | 2, 1]) + b"a" + bytes([2 << 3 | 2, 2]) + b"\xff\xfe"  # texts[0]="a", texts[1]=bad
    raw = bytes([1 << 3 | 2, len(inner)]) + inner
    decoded = lenient_decoder(recommend_pb2.RecommendStreamRequest)(raw)
    assert isinstance(decoded, UndecodableRequest) and decoded.field == "batch.texts[1]"


# ----------------------------------------------------------------------------- chat state


@pytest.mark.parametrize(("state", "field"), [
    (chat_pb2.ConversationState(turn=2**31 - 1), "state.turn"),  # +1 overflowed int32 before
    (chat_pb2.ConversationState(turn=-1), "state.turn"),
    (chat_pb2.ConversationState(asked=[1, 99]), "state.asked[1]"),
    (chat_pb2.ConversationState(language="klingon"), "state.language"),
])
def test_out_of_range_chat_state_names_the_field(state, field):
    with pytest.raises(errors.InvalidArgument) as raised:
        validate_state(state)
    assert raised.value.field == field and field in raised.value.message
    validate_state(chat_pb2.ConversationState(turn=MAX_TURN, asked=[1, 6], language="ko"))
