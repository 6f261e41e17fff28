"""The gateway process configured for Bedrock, against the fake Bedrock on 127.0.0.1 (real
boto3 client, real wire formats via --endpoint-url): the answer names the vectorizer that
produced it, a repeated text is a cache hit with no second Bedrock call, a broken Bedrock
falls back to the local vectorizer or, with --fallback none, is UNAVAILABLE. Credentials are
dummies from the environment and never appear in the gateway's log."""

from __future__ import annotations

import json
import os

import grpc
import pytest

from recommender.v1 import common_pb2, vectorize_pb2, vectorize_pb2_grpc
from tests.fakes.fake_bedrock import FakeBedrock, answer, server_error, text, throttle
from tests.support import PYTHON, ServerProcess, free_port

pytestmark = pytest.mark.slow

MESSAGE = "50대 중반 엄마 크리스마스 선물로 30만원 이하 안마기 추천해줘"
ANSWER = {"age": 55, "gender": 1, "budget": 300000, "interest": 10, "purpose": 2, "season": 4}
SECRET_KEY = "fakeSecretKeyThatMustNeverBeLogged0000000"


def aws_env(tmp_path) -> dict[str, str]:
    """Dummy credentials and no machine AWS config: only what the test sets is used."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    empty = tmp_path / "empty-aws-file"
    empty.write_text("")
    env.update({
        "AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKEFAKE", "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_CONFIG_FILE": str(empty), "AWS_SHARED_CREDENTIALS_FILE": str(empty),
        "AWS_EC2_METADATA_DISABLED": "true",
    })
    return env


def start(tmp_path, fake: FakeBedrock, *flags: str) -> tuple[ServerProcess, grpc.Channel]:
    port = free_port()
    gateway = ServerProcess(
        [PYTHON, "-m", "gateway", "serve", "--port", str(port), "--inference", f"127.0.0.1:{free_port()}",
         "--metrics-port", "0", "--endpoint-url", fake.url, "--region", "us-east-1",
         "--bedrock-timeout", "2", *flags],
        tmp_path / "gateway.log", env=aws_env(tmp_path),
    ).start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=30)
    except grpc.FutureTimeoutError:
        gateway.stop()
        raise AssertionError(f"gateway did not start:\n{gateway.log()}") from None
    return gateway, channel


def vectorize(channel, message: str = MESSAGE) -> vectorize_pb2.VectorizeResponse:
    stub = vectorize_pb2_grpc.VectorizeServiceStub(channel)
    return stub.Vectorize(vectorize_pb2.VectorizeRequest(text=message), timeout=20)


def test_converse_answers_then_cache_hits(tmp_path):
    with FakeBedrock() as fake:
        fake.script(answer(ANSWER))
        gateway, channel = start(tmp_path, fake, "--vectorizer", "bedrock-converse", "--fallback", "none")
        try:
            first = vectorize(channel)
            assert list(first.features) == [55, 1, 300000, 10, 2, 4]
            assert first.vectorizer == common_pb2.VECTORIZER_BEDROCK_CONVERSE
            again = vectorize(channel)
            assert again.vectorizer == common_pb2.VECTORIZER_CACHE
            assert list(again.features) == list(first.features)
            assert len(fake.requests_for("converse")) == 1  # the cache hit cost no call
        finally:
            gateway.stop()
        assert SECRET_KEY not in gateway.log()
        assert MESSAGE not in gateway.log()  # customer text only at DEBUG


def test_flow_answers_through_invoke_flow(tmp_path):
    config = tmp_path / "flow.json"
    config.write_text(json.dumps({"region": "us-east-1", "flowIdentifier": "F1", "flowAliasIdentifier": "A1"}))
    with FakeBedrock() as fake:
        fake.script(answer(ANSWER))
        gateway, channel = start(tmp_path, fake, "--vectorizer", "bedrock-flow", "--bedrock-config", str(config))
        try:
            reply = vectorize(channel)
            assert reply.vectorizer == common_pb2.VECTORIZER_BEDROCK_FLOW
            assert list(reply.features) == [55, 1, 300000, 10, 2, 4]
            assert fake.requests_for("invoke_flow")
        finally:
            gateway.stop()


def test_broken_bedrock_falls_back_to_local(tmp_path):
    with FakeBedrock(default=server_error()) as fake:
        fake.script(text("Sure! Here is the vector you asked for: age fifty-five"))
        gateway, channel = start(tmp_path, fake, "--vectorizer", "bedrock-converse", "--fallback", "local")
        try:
            garbage = vectorize(channel)  # model answered prose: rejected, local answers
            assert garbage.vectorizer == common_pb2.VECTORIZER_LOCAL
            assert garbage.features[4] == 2  # a gift, read by the local rules
            down = vectorize(channel, "I need earbuds for running, about 100,000 won")  # 5xx
            assert down.vectorizer == common_pb2.VECTORIZER_LOCAL
        finally:
            gateway.stop()


def test_without_fallback_a_throttled_bedrock_is_unavailable(tmp_path):
    with FakeBedrock(default=throttle()) as fake:
        gateway, channel = start(tmp_path, fake, "--vectorizer", "bedrock-converse", "--fallback", "none")
        try:
            with pytest.raises(grpc.RpcError) as raised:
                vectorize(channel)
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "vectorizer unavailable" in raised.value.details()
        finally:
            gateway.stop()


def test_bedrock_flow_without_config_fails_at_start(tmp_path):
    port = free_port()
    gateway = ServerProcess(
        [PYTHON, "-m", "gateway", "serve", "--port", str(port), "--inference", "127.0.0.1:1",
         "--metrics-port", "0", "--vectorizer", "bedrock-flow"],
        tmp_path / "gateway.log", env=aws_env(tmp_path)).start()
    try:
        assert gateway.process.wait(60) == 2
        assert "--bedrock-config" in gateway.log()
    finally:
        gateway.stop()
