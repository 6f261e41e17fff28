"""Issue 15 against real processes: a frozen inference worker (SIGSTOP) under load, request
size and stream limits enforced before work is done, memory after an abusive burst, and the
inference metrics folder removed on exit. Bounded in time and count; 127.0.0.1 only."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from recommender import settings
from recommender.v1 import recommend_pb2, recommend_pb2_grpc
from tests.support import PYTHON, ServerProcess, free_port, free_port_block, wait_for_health

pytestmark = pytest.mark.slow

GOOD = [35, 1, 300_000, 2, 1, 0]


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_gateway(tmp_path, inference: str, name: str, extra: list[str] = ()):
    port = free_port()
    process = ServerProcess(
        [PYTHON, "-m", "gateway", "serve", "--port", str(port), "--inference", inference,
         "--metrics-port", "0", *extra], tmp_path / f"{name}.log").start()
    return process, port


@pytest.fixture(scope="module")
def stack(tmp_path_factory, trained_models_dir):
    """inference (2 workers, its own TMPDIR) + gateway over both worker ports."""
    logs = tmp_path_factory.mktemp("resilience")
    tmpdir = logs / "tmp"
    tmpdir.mkdir()
    port = free_port_block(3)
    inference = ServerProcess(
        [PYTHON, "-m", "inference", "--models-dir", str(trained_models_dir), "--port", str(port),
         "--workers", "2", "--metrics-port", str(free_port())],
        logs / "inference.log", env={"TMPDIR": str(tmpdir)}).start()
    gateway = None
    try:
        for i in range(2):
            wait_for_health(f"127.0.0.1:{settings.worker_port(port, i)}", timeout=180, process=inference.process)
        gateway, gateway_port = start_gateway(logs, settings.worker_addresses(port, 2), "gateway")
        wait_for_health(f"127.0.0.1:{gateway_port}", timeout=60, process=gateway.process)
        yield {"inference": inference, "inference_port": port, "gateway": gateway,
               "gateway_port": gateway_port, "tmpdir": tmpdir}
    finally:
        if gateway is not None:
            gateway.stop()
        inference.stop()


def test_a_frozen_worker_is_ejected_and_calls_keep_succeeding(stack):
    """SIGSTOP one of two workers under a concurrent load: calls keep succeeding (each try has
    its own deadline and is retried on the other worker), health stays SERVING."""
    target = f"127.0.0.1:{stack['gateway_port']}"
    workers = children(stack["inference"].process.pid)
    assert len(workers) == 2, workers
    outcomes: list[tuple[float, str]] = []
    stop = threading.Event()

    def caller():
        with grpc.insecure_channel(target) as channel:
            stub = recommend_pb2_grpc.RecommendServiceStub(channel)
            while not stop.is_set():
                try:
                    stub.Recommend(recommend_pb2.RecommendRequest(features=GOOD), timeout=5)
                    outcomes.append((time.monotonic(), "OK"))
                except grpc.RpcError as exc:
                    outcomes.append((time.monotonic(), exc.code().name))

    health_during: list[int] = []
    with futures.ThreadPoolExecutor(8) as pool:
        for _ in range(8):
            pool.submit(caller)
        try:
            time.sleep(1.5)
            frozen_at = time.monotonic()
            os.kill(workers[0], signal.SIGSTOP)
            with grpc.insecure_channel(target) as channel:
                health = health_pb2_grpc.HealthStub(channel)
                for _ in range(4):
                    time.sleep(1.0)
                    health_during.append(health.Check(health_pb2.HealthCheckRequest(), timeout=2).status)
            thawed_at = time.monotonic()
        finally:
            os.kill(workers[0], signal.SIGCONT)
            time.sleep(1.0)
            stop.set()
    errors = [t for t, code in outcomes if code != "OK"]
    frozen_ok = [t for t, code in outcomes if code == "OK" and frozen_at + 1.5 <= t <= thawed_at]
    error_span = (max(errors) - min(errors)) if errors else 0.0
    assert error_span <= 1.0 and len(errors) <= 8, (len(errors), error_span, {c for _, c in outcomes})
    assert len(frozen_ok) >= 50, f"only {len(frozen_ok)} calls succeeded while a worker was frozen"
    assert health_during and all(s == health_pb2.HealthCheckResponse.SERVING for s in health_during)
    assert "event=inference_address_ejected" in stack["gateway"].log()


def oversized_batch(megabytes: float) -> recommend_pb2.RecommendBatchRequest:
    return recommend_pb2.RecommendBatchRequest(texts=["가" * 1000] * int(megabytes * 1024 * 1024 / 3000))


@pytest.mark.parametrize("server", ["gateway", "inference"])
def test_a_message_over_the_limit_is_refused_before_it_is_read(stack, server):
    port = stack["gateway_port"] if server == "gateway" else stack["inference_port"]
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", -1)]) as channel:
        stub = recommend_pb2_grpc.RecommendServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.RecommendBatch(oversized_batch(9), timeout=30)
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert str(settings.MAX_REQUEST_BYTES) in raised.value.details()  # names the limit
        # and the server still answers
        assert stub.Recommend(recommend_pb2.RecommendRequest(features=GOOD), timeout=10).items


def test_memory_returns_near_baseline_after_a_burst_of_large_messages(stack):
    pid = stack["gateway"].process.pid
    target = f"127.0.0.1:{stack['gateway_port']}"
    before = rss_mb(pid)
    payload = oversized_batch(30).SerializeToString()
    with grpc.insecure_channel(target, options=[("grpc.max_send_message_length", -1)]) as channel:
        call = channel.unary_unary("/recommender.v1.RecommendService/RecommendBatch",
                                   request_serializer=None, response_deserializer=None)
        with futures.ThreadPoolExecutor(6) as pool:
            results = list(pool.map(lambda _: _code(call, payload), range(6)))
    assert set(results) == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    time.sleep(1.0)
    after = rss_mb(pid)
    assert after - before < 60, f"gateway RSS {before:.0f} MB -> {after:.0f} MB after 6 x 30 MB requests"


def _code(call, payload) -> grpc.StatusCode:
    try:
        call(payload, timeout=60)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


@pytest.fixture(scope="module")
def limited_gateway(tmp_path_factory):
    """A gateway with tiny stream limits and no backend (the stream messages below are answered
    by the gateway itself: texts that are all invalid)."""
    logs = tmp_path_factory.mktemp("limited")
    gateway, port = start_gateway(logs, f"127.0.0.1:{free_port()}", "gateway-limited",
                                  ["--max-streams", "2", "--stream-idle-timeout-s", "1.5",
                                   "--stream-max-duration-s", "6"])
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=60)
        yield {"channel": channel, "gateway": gateway}
    gateway.stop()


def _local_message() -> recommend_pb2.RecommendStreamRequest:
    return recommend_pb2.RecommendStreamRequest(batch=recommend_pb2.RecommendBatchRequest(texts=[" "]))


def test_streams_beyond_the_limit_are_refused_naming_it(limited_gateway):
    stub = recommend_pb2_grpc.RecommendServiceStub(limited_gateway["channel"])
    release = threading.Event()

    def held():  # a message every 0.3 s (never idle) until released
        yield _local_message()
        while not release.wait(0.3):
            yield _local_message()

    calls = [stub.RecommendStream(held(), timeout=20) for _ in range(2)]
    try:
        for call in calls:
            assert next(call).batch.rows == 1  # both open and answered
        with pytest.raises(grpc.RpcError) as raised:
            list(stub.RecommendStream(iter([_local_message()]), timeout=10))
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "limit of 2 concurrent streams" in raised.value.details()
    finally:
        release.set()
        for call in calls:
            call.cancel()
    time.sleep(0.5)
    # with the held streams gone a new one is served again
    assert [r.batch.rows for r in stub.RecommendStream(iter([_local_message()]), timeout=10)] == [1]


def test_an_idle_stream_is_ended_naming_the_limit(limited_gateway):
    stub = recommend_pb2_grpc.RecommendServiceStub(limited_gateway["channel"])
    release = threading.Event()

    def idle():
        yield _local_message()
        release.wait(20)

    started = time.monotonic()
    call = stub.RecommendStream(idle(), timeout=20)
    try:
        assert next(call).batch.rows == 1
        with pytest.raises(grpc.RpcError) as raised:
            next(call)
    finally:
        release.set()
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "idle" in raised.value.details() and "1.5 s" in raised.value.details()
    assert time.monotonic() - started < 10


def test_inference_removes_its_metrics_folder_on_exit(stack):
    """Runs last in this module: stops the module's inference server."""
    folders = list(stack["tmpdir"].glob("inference-metrics-*"))
    assert folders, "the supervisor makes its metrics folder under TMPDIR"
    assert stack["inference"].stop() == 0
    assert not list(stack["tmpdir"].glob("inference-metrics-*"))


def test_a_stream_open_longer_than_the_limit_is_ended_naming_it(limited_gateway):
    stub = recommend_pb2_grpc.RecommendServiceStub(limited_gateway["channel"])
    stop = threading.Event()

    def busy():  # never idle, never done
        while not stop.is_set():
            yield _local_message()
            stop.wait(0.5)

    started = time.monotonic()
    answered = 0
    try:
        with pytest.raises(grpc.RpcError) as raised:
            for _ in stub.RecommendStream(busy(), timeout=30):
                answered += 1
    finally:
        stop.set()
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "open longer than" in raised.value.details() and "6 s" in raised.value.details()
    assert answered >= 5 and 5.5 < time.monotonic() - started < 20
