"""Server lifecycle as a real process: health transitions, hot swap under load, a corrupt
version skipped, pinning, a killed worker restarted, SIGTERM drain."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from recommender import model_repository
from recommender.v1 import recommend_pb2, recommend_pb2_grpc
from tests.inference.conftest import run_server
from tests.inference.model_builder import publish_corrupt_version
from tests.support import wait_for_health

pytestmark = pytest.mark.slow

GOOD = [30, 1, 500_000, 5, 1, 4]


def publish_copy_of_version_1(source_models_dir, target_models_dir) -> int:
    """Publish the trained version 1 again as the next version (the way the trainer does)."""
    staged = model_repository.staging_dir(target_models_dir)
    shutil.rmtree(staged)
    shutil.copytree(model_repository.version_dir(source_models_dir, 1), staged)
    return model_repository.publish(staged, target_models_dir)


def wait_until(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what}")


def health_status(target: str, service: str = "") -> int | None:
    with grpc.insecure_channel(target) as channel:
        try:
            return health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=1).status
        except grpc.RpcError:
            return None


def test_not_serving_until_a_model_is_published(tmp_path, served_models_dir):
    models = tmp_path / "models"
    models.mkdir()
    with run_server(models, tmp_path / "server.log", workers=1, wait=False) as server:
        own = f"127.0.0.1:{server.worker_port(0)}"
        wait_until(lambda: health_status(own) is not None, what="the worker to listen")
        for target in (server.target, own):
            for service in ("", "recommender.v1.RecommendService"):
                assert health_status(target, service) == health_pb2.HealthCheckResponse.NOT_SERVING
        with grpc.insecure_channel(server.target) as channel:
            with pytest.raises(grpc.RpcError) as info:
                recommend_pb2_grpc.RecommendServiceStub(channel).Recommend(
                    recommend_pb2.RecommendRequest(features=GOOD), timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "no model version is loaded" in info.value.details()

        assert publish_copy_of_version_1(served_models_dir, models) == 1
        server.wait_ready()
        assert health_status(server.target) == health_pb2.HealthCheckResponse.SERVING


class RequestLoop(threading.Thread):
    """Sends Recommend and RecommendBatch continuously over the round-robin channel and
    records every failure and every model version that answered."""

    def __init__(self, target: str):
        super().__init__(daemon=True)
        self.target = target
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.versions: list[int] = []

    def run(self):
        with grpc.insecure_channel(self.target, options=[("grpc.lb_policy_name", "round_robin")]) as channel:
            stub = recommend_pb2_grpc.RecommendServiceStub(channel)
            while not self.stop.is_set():
                try:
                    self.versions.append(stub.Recommend(
                        recommend_pb2.RecommendRequest(features=GOOD), timeout=10).model_version)
                    self.versions.append(stub.RecommendBatch(
                        recommend_pb2.RecommendBatchRequest(features=GOOD * 50), timeout=10).model_version)
                except grpc.RpcError as exc:
                    self.failures.append(f"{exc.code().name}: {exc.details()}")


@pytest.fixture(scope="module")
def two_worker_server(tmp_path_factory, served_models_dir):
    """A 2-worker server of this module's own, on a copy of the model repository, for the
    hot-swap and the killed-worker tests (one start of two TensorFlow workers instead of two).
    Either test passes first or alone: neither assumes what the other left behind."""
    folder = tmp_path_factory.mktemp("lifecycle-2-workers")
    models = shutil.copytree(served_models_dir, folder / "models")
    with run_server(models, folder / "server.log", workers=2) as server:
        yield server, models


def test_hot_swap_under_load_skips_a_corrupt_version_and_keeps_two_for_pinning(
        two_worker_server, served_models_dir):
    server, models_dir_copy = two_worker_server
    load = RequestLoop(server.round_robin_target)
    load.start()
    try:
        wait_until(lambda: len(load.versions) > 20, what="first answers")
        corrupt = publish_corrupt_version(models_dir_copy)
        wait_until(lambda: server.log().count(f"event=model_load_failed worker=0 version={corrupt}")
                   and server.log().count(f"event=model_load_failed worker=1 version={corrupt}"),
                   what="both workers to reject the corrupt version")
        newer = publish_copy_of_version_1(served_models_dir, models_dir_copy)
        assert newer == corrupt + 1
        # Each worker polls the folder on its own; wait until both serve the new version,
        # then for answers that all came after that.
        wait_until(lambda: server.log().count(f"event=model_loaded worker=0 version={newer}")
                   and server.log().count(f"event=model_loaded worker=1 version={newer}"),
                   what="both workers to load the new version")
        count = len(load.versions)
        wait_until(lambda: load.versions[count:].count(newer) >= 20, what="the new version to answer")
    finally:
        load.stop.set()
        load.join(30)
    assert load.failures == []
    assert set(load.versions) == {1, newer}
    # Once a worker answers with the new version it never goes back to the old one.
    assert load.versions[-10:] == [newer] * 10

    with grpc.insecure_channel(server.target) as channel:
        stub = recommend_pb2_grpc.RecommendServiceStub(channel)
        pinned = stub.Recommend(recommend_pb2.RecommendRequest(features=GOOD, model_version=1), timeout=10)
        assert pinned.model_version == 1
        newest = stub.Recommend(recommend_pb2.RecommendRequest(features=GOOD), timeout=10)
        assert newest.model_version == newer
        with pytest.raises(grpc.RpcError) as info:
            stub.Recommend(recommend_pb2.RecommendRequest(features=GOOD, model_version=corrupt), timeout=10)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        assert f"loaded versions: {newer}, 1" in info.value.details()
    assert re.search(r'inference_model_load_failures_total\{worker="0"\} 1\.0', server.metrics())
    assert "SavedModel does not load" in server.log()


def _worker_pid(log: str, index: int) -> list[int]:
    return [int(p) for p in re.findall(rf"event=worker_started worker={index} pid=(\d+)", log)]


def test_killed_worker_is_restarted(two_worker_server):
    server, _ = two_worker_server
    (victim,) = _worker_pid(server.log(), 1)
    os.kill(victim, signal.SIGKILL)
    pids = wait_until(lambda: len(_worker_pid(server.log(), 1)) == 2 and _worker_pid(server.log(), 1),
                      what="worker 1 to be restarted")
    assert pids[1] != victim
    assert f"event=worker_died worker=1 pid={victim}" in server.log()
    wait_for_health(f"127.0.0.1:{server.worker_port(1)}", timeout=90, process=server.server.process)
    replies = {}
    for worker in (0, 1):
        with grpc.insecure_channel(f"127.0.0.1:{server.worker_port(worker)}") as channel:
            replies[worker] = recommend_pb2_grpc.RecommendServiceStub(channel).Recommend(
                recommend_pb2.RecommendRequest(features=GOOD), timeout=10)
    # the restarted worker serves the newest version, as the other worker does (1 when this
    # test runs first; the hot-swap test, when it ran first, published newer ones)
    assert replies[1].model_version == replies[0].model_version >= 1
    assert replies[1].items == replies[0].items
    assert 'inference_worker_restarts_total{worker="1"} 1.0' in server.metrics()
    assert len(_worker_pid(server.log(), 0)) == 1  # the other worker was left alone


def test_sigterm_drains_an_in_flight_stream_then_exits_cleanly(tmp_path, served_models_dir):
    with run_server(served_models_dir, tmp_path / "server.log", workers=1) as server:
        outgoing: queue.Queue = queue.Queue()

        def requests():
            while (item := outgoing.get()) is not None:
                yield item

        with grpc.insecure_channel(server.target) as channel:
            replies = recommend_pb2_grpc.RecommendServiceStub(channel).RecommendStream(requests(), timeout=60)
            outgoing.put(recommend_pb2.RecommendStreamRequest(batch=recommend_pb2.RecommendBatchRequest(features=GOOD)))
            assert next(replies).batch.rows == 1

            server.server.process.send_signal(signal.SIGTERM)
            wait_until(lambda: "event=draining" in server.log(), what="the worker to start draining")
            # New calls are refused while draining...
            with grpc.insecure_channel(f"127.0.0.1:{server.worker_port(0)}") as fresh:
                with pytest.raises(grpc.RpcError):
                    recommend_pb2_grpc.RecommendServiceStub(fresh).Recommend(
                        recommend_pb2.RecommendRequest(features=GOOD), timeout=5)
            # ...but the call already in flight is finished.
            outgoing.put(recommend_pb2.RecommendStreamRequest(batch=recommend_pb2.RecommendBatchRequest(features=GOOD * 2)))
            assert next(replies).batch.rows == 2
            outgoing.put(None)
            assert list(replies) == []
            assert replies.code() == grpc.StatusCode.OK
        assert server.server.process.wait(30) == 0
        assert "event=worker_stopped worker=0" in server.log()
        assert "event=stopped" in server.log()


def _batcher_totals(server) -> tuple[float, float, float]:
    """(rows, model calls) of the dynamic batcher and Recommend calls answered within 50 ms
    (server-side latency, batch wait included), so far."""
    text = server.metrics()
    rows = float(re.search(r'inference_batch_size_sum\{source="dynamic_batcher"\} (\S+)', text).group(1))
    calls = float(re.search(r'inference_batch_size_count\{source="dynamic_batcher"\} (\S+)', text).group(1))
    fast = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("inference_request_latency_seconds_bucket{")
               and 'method="Recommend"' in line and 'le="0.05"' in line)
    return rows, calls, fast


def _sequential_calls(server, count: int) -> None:
    with grpc.insecure_channel(server.target) as channel:
        stub = recommend_pb2_grpc.RecommendServiceStub(channel)
        for _ in range(count):
            assert len(stub.Recommend(recommend_pb2.RecommendRequest(features=GOOD), timeout=10).items) == 3


# A window far longer than any call's own work: a row that waited for company shows up above
# 50 ms in the server's latency histogram, one scored at once below it.
WINDOW_MS = "100"


def test_adaptive_batching_gathers_concurrent_calls_and_never_holds_a_lone_caller(tmp_path, served_models_dir):
    from concurrent.futures import ThreadPoolExecutor

    with run_server(served_models_dir, tmp_path / "server.log", workers=1,
                    extra=["--batch-timeout-ms", WINDOW_MS, "--max-batch-size", "64"]) as server:
        with grpc.insecure_channel(server.target) as channel:
            stub = recommend_pb2_grpc.RecommendServiceStub(channel)
            with ThreadPoolExecutor(16) as pool:
                replies = list(pool.map(lambda i: stub.Recommend(
                    recommend_pb2.RecommendRequest(features=GOOD), timeout=10), range(256)))
        assert all(r.model_version == 1 and len(r.items) == 3 for r in replies)
        rows, calls, _ = _batcher_totals(server)
        assert rows == 256
        # 16 callers in flight: the adaptive window opens (another call is in flight when a row
        # arrives) and gathers several rows per model call; one model call per row without it.
        # With the old timing-based burst detector this took 136-256 calls; counting calls in
        # flight it takes about 16 (every window gathers the 16 waiting callers).
        assert calls <= rows / 4

        _sequential_calls(server, 10)  # then one caller alone
        rows2, calls2, fast = _batcher_totals(server)
        assert (rows2 - rows, calls2 - calls) == (10, 10)
        # At most the first of them waits (other calls were in flight when the last window
        # closed); then rows are scored at once. One more is allowed a slow moment.
        assert fast >= 8, f"only {fast:g} of 10 lone calls answered within 50 ms"


def test_no_batch_adaptive_holds_even_a_lone_caller_for_the_window(tmp_path, served_models_dir):
    """--no-batch-adaptive: the window is always open, so a lone caller's rows wait for it."""
    with run_server(served_models_dir, tmp_path / "server.log", workers=1,
                    extra=["--batch-timeout-ms", WINDOW_MS, "--no-batch-adaptive"]) as server:
        _sequential_calls(server, 5)
        rows, calls, fast = _batcher_totals(server)
        assert (rows, calls, fast) == (5, 5, 0)
