"""The gateway process configured for Bedrock, against the fake Bedrock on 127.0.0.1 (real
boto3 client, real wire formats via --endpoint-url): the answer names the vectorizer that
produced it, a repeated text is a cache hit with no second Bedrock call, a broken Bedrock
falls back to the local vectorizer or, with --fallback none, is UNAVAILABLE; a permanent
error degrades the "vectorizer" health service and sets gateway_vectorizer_degraded while the
local rules answer; --bedrock-check refuses to start on one; the caller's deadline bounds a
Bedrock call. Credentials are dummies from the environment and never appear in the gateway's
log."""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from recommender.v1 import common_pb2, vectorize_pb2, vectorize_pb2_grpc
from tests.fakes.fake_bedrock import FakeBedrock, answer, error, server_error, slow, text, throttle
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


def vectorize(channel, message: str = MESSAGE, timeout: float = 20) -> vectorize_pb2.VectorizeResponse:
    stub = vectorize_pb2_grpc.VectorizeServiceStub(channel)
    return stub.Vectorize(vectorize_pb2.VectorizeRequest(text=message), timeout=timeout)


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


ZEROS = {"age": 0, "gender": 0, "budget": 0, "interest": 0, "purpose": 0, "season": 0}


def vectorizer_health(channel) -> str:
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="vectorizer"), timeout=5)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def test_deadline_bounds_bedrock_and_a_permanent_error_degrades_the_vectorizer(tmp_path):
    metrics_port = free_port()
    with FakeBedrock() as fake:
        fake.script(answer(ZEROS))  # the --bedrock-check canary passes
        gateway, channel = start(tmp_path, fake, "--vectorizer", "bedrock-converse", "--fallback", "local",
                                 "--bedrock-check", "--bedrock-timeout", "10", "--metrics-port", str(metrics_port))
        try:
            assert len(fake.requests) == 1 and vectorizer_health(channel) == "SERVING"

            # A caller with 2.5 s left is not made to wait for Bedrock's 10 s timeout.
            fake.default = slow(20, answer(ZEROS))
            started = time.monotonic()
            try:
                assert vectorize(channel, "earbuds for running", timeout=2.5).vectorizer == common_pb2.VECTORIZER_LOCAL
            except grpc.RpcError as exc:  # a very loaded machine ate the reserve kept for the fallback
                assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert time.monotonic() - started < 3.5
            [latency] = re.findall(r"api=converse outcome=timeout latency_ms=([\d.]+)", gateway.log())
            # Bedrock gives up ~0.25 s before the caller's 2.5 s (the fallback's reserve), not after
            # --bedrock-timeout 10; the margin is for a loaded machine waking the thread late.
            assert float(latency) < 3000

            # A permanent error: not retried, counted by kind, the vectorizer reported degraded.
            fake.default = error(403, "AccessDeniedException", "You don't have access to the model.")
            calls = len(fake.requests)
            assert vectorize(channel, "a gift for mom").vectorizer == common_pb2.VECTORIZER_LOCAL
            assert len(fake.requests) == calls + 1
            deadline = time.monotonic() + 5
            while vectorizer_health(channel) != "NOT_SERVING" and time.monotonic() < deadline:
                time.sleep(0.05)
            assert vectorizer_health(channel) == "NOT_SERVING"
            metrics = scrape(metrics_port)
            assert 'gateway_vectorizer_degraded{kind="access_denied",vectorizer="bedrock-converse"} 1.0' in metrics
            assert 'gateway_bedrock_calls_total{api="converse",outcome="access_denied"} 1.0' in metrics
            # While degraded the local rules answer without another doomed Bedrock call.
            assert vectorize(channel, "a camera for my trip").vectorizer == common_pb2.VECTORIZER_LOCAL
            assert len(fake.requests) == calls + 1
        finally:
            gateway.stop()
        log = gateway.log()
        assert log.count("event=bedrock_degraded") == 1
        assert "remedy=" in log and "every region the inference profile routes to" in log
        assert SECRET_KEY not in log


def test_bedrock_check_refuses_to_start_on_a_permanent_error(tmp_path):
    with FakeBedrock(default=error(404, "ResourceNotFoundException", "Flow FLOWGONE01 not found.")) as fake:
        config = tmp_path / "flow.json"
        config.write_text(json.dumps({"region": "ap-northeast-2", "flowIdentifier": "FLOWGONE01",
                                      "flowAliasIdentifier": "ALIASGONE1"}))
        gateway = ServerProcess(
            [PYTHON, "-m", "gateway", "serve", "--port", str(free_port()), "--inference", "127.0.0.1:1",
             "--metrics-port", "0", "--endpoint-url", fake.url, "--vectorizer", "bedrock-flow",
             "--bedrock-config", str(config), "--bedrock-check"],
            tmp_path / "gateway.log", env=aws_env(tmp_path)).start()
        try:
            assert gateway.process.wait(60) == 2
        finally:
            gateway.stop()
        log = gateway.log()
        assert "--bedrock-check: Bedrock invoke_flow failed with ResourceNotFoundException" in log
        assert "bedrock setup --region ap-northeast-2" in log  # the remedy
        assert len(fake.requests) == 1  # permanent: one call, no retry
