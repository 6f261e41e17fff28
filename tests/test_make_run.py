"""`make run` as a user meets it on a fresh clone: no data and no model yet, one command
generates the data, trains the model, starts the inference server and the gateway, opens the
chat; a scripted conversation on stdin (one Korean turn, one English turn, then /quit) gets
answers; leaving the chat stops everything it started.

Runs `python -m clients.stack run` (what `make run` calls after `make setup`) so the test does
not reinstall the virtualenv."""

from __future__ import annotations

import os
import signal
import time

import pytest

from recommender import model_repository, schema
from tests.support import PYTHON, ROOT, free_port, free_port_block, port_is_free, processes_mentioning
from trainer.generate import DEFAULT_ROWS

pytestmark = pytest.mark.slow

CHAT_MODULE = ROOT / "clients" / "chat.py"


@pytest.mark.skipif(not CHAT_MODULE.exists(), reason="clients/chat.py (the interactive chat) does not exist yet")
def test_run_trains_serves_chats_and_stops_everything(fresh_clone_run):
    """The run itself is the session fixture `fresh_clone_run` (tests/conftest.py): a fresh clone,
    no data and no model; tests/trainer/test_training.py checks the accuracy of its training."""
    run = fresh_clone_run
    result, models = run.result, run.models
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"generated {DEFAULT_ROWS} rows at {run.data}" in result.stdout, "no default data was generated"
    assert model_repository.latest_version(models) == 1, "the default model was not trained"
    # the bot answered both turns with products from the catalog, in both languages
    assert any(p.name_ko in result.stdout for p in schema.DEFAULT_CATALOG), result.stdout
    assert any(p.name_en in result.stdout for p in schema.DEFAULT_CATALOG), result.stdout
    assert "[stack] stopped" in result.stderr
    if (ROOT / "web" / "index.html").exists():
        assert f"[stack] web: http://127.0.0.1:{run.edge_port}/" in result.stderr
    # everything it started was gone and the ports were free again when the chat ended
    assert run.left_running == []  # trainer, inference supervisor and workers, the gateway
    assert run.busy_ports == [], f"ports {run.busy_ports} still in use after the chat ended"
    logs = (run.logs / "gateway.log").read_text()
    assert "event=gateway_stopped" in logs


def _recommend(target: str) -> object:
    import grpc

    from recommender.v1 import recommend_pb2, recommend_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        return recommend_pb2_grpc.RecommendServiceStub(channel).Recommend(
            recommend_pb2.RecommendRequest(text="I need a laptop for coding, 2 million won"), timeout=10)


def _pids_mentioning(marker: str) -> list[int]:
    return [int(line.split(":", 1)[0]) for line in processes_mentioning(marker)]


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout:.0f}s: {what}")


def test_serve_supervises_restarts_and_stops_everything(tmp_path, models_dir_copy):
    """`make serve`: an existing model is used as is; inference, gateway and Envoy come up
    behind the one command (gRPC, JSON and the page on EDGE_PORT); a SIGKILLed gateway is
    started again; Ctrl-C (SIGINT) stops everything, and a new stack on the same ports starts within a
    second of the old one stopping (issue 16: TIME_WAIT connections are no listener); SIGKILL
    of the stack process itself leaves no server behind (issue 15)."""
    import json
    import urllib.request

    from tests.support import ServerProcess, wait_for_health

    inference_port, gateway_port, edge_port = free_port_block(3), free_port(), free_port()
    env = {
        "INFERENCE_PORT": str(inference_port), "GATEWAY_PORT": str(gateway_port),
        "METRICS_PORT": str(free_port()), "GATEWAY_METRICS_PORT": str(free_port()),
        "EDGE_PORT": str(edge_port), "EDGE_ADMIN_PORT": str(free_port()),
        "MODELS_DIR": str(models_dir_copy), "DATA": str(tmp_path / "unused.csv"), "WORKERS": "2",
        "LOG_DIR": str(tmp_path / "logs"),
    }
    ports = (inference_port, inference_port + 1, inference_port + 2, gateway_port, edge_port)
    gateway_marker = f"--port {gateway_port}"

    def start(log_name: str) -> ServerProcess:
        stack = ServerProcess([PYTHON, "-m", "clients.stack", "serve"], tmp_path / log_name, env=env).start()
        _wait_for(lambda: "[stack] serving" in stack.log() or stack.process.poll() is not None, 180,
                  "the stack serving")
        assert stack.process.poll() is None, stack.log()
        return stack

    stack = start("stack.log")
    try:
        # the API straight and through Envoy (gRPC and JSON), the page through Envoy
        direct = _recommend(f"127.0.0.1:{gateway_port}")
        assert direct.items and direct.model_version == 1
        assert _recommend(f"127.0.0.1:{edge_port}").items == direct.items
        request = urllib.request.Request(f"http://127.0.0.1:{edge_port}/v1/recommend", method="POST",
                                         data=b'{"text": "I need a laptop for coding, 2 million won"}')
        with urllib.request.urlopen(request, timeout=10) as reply:
            answer = json.loads(reply.read())
        assert [i["productId"] for i in answer["items"]] == [i.product_id for i in direct.items]
        assert "model version 1 found" in stack.log()
        if (ROOT / "web" / "index.html").exists():
            assert f"[stack] web: http://127.0.0.1:{edge_port}/" in stack.log()
            with urllib.request.urlopen(f"http://127.0.0.1:{edge_port}/", timeout=10) as reply:
                assert reply.headers["content-type"].startswith("text/html")

        # a crashed gateway is started again and serves
        [gateway_pid] = _pids_mentioning(gateway_marker)
        os.kill(gateway_pid, signal.SIGKILL)
        _wait_for(lambda: "gateway restarted" in stack.log(), 30, "the gateway restarted")
        wait_for_health(f"127.0.0.1:{gateway_port}", timeout=60)
        assert _recommend(f"127.0.0.1:{edge_port}").items == direct.items

        # Ctrl-C to the stack process only (not its group): it must stop its children itself
        stack.process.send_signal(signal.SIGINT)
        assert stack.process.wait(60) == 0, stack.log()
        stopped_at = time.monotonic()
        assert "[stack] stopped" in stack.log()
        assert processes_mentioning(str(models_dir_copy)) == []
        assert processes_mentioning(gateway_marker) == []
        for port in ports:
            assert port_is_free(port), f"port {port} still in use after Ctrl-C"
    finally:
        stack.stop()

    # the same ports again at once: connections the old stack served wait in TIME_WAIT
    again = ServerProcess([PYTHON, "-m", "clients.stack", "serve"], tmp_path / "again.log", env=env)
    again.start()
    assert time.monotonic() - stopped_at < 1.0
    try:
        _wait_for(lambda: "[stack] serving" in again.log() or again.process.poll() is not None, 180,
                  "the second stack serving")
        assert "already in use" not in again.log() and again.process.poll() is None, again.log()
        assert _recommend(f"127.0.0.1:{edge_port}").items == direct.items
        # SIGKILL: no chance to clean up, yet every server goes with it (PR_SET_PDEATHSIG)
        again.process.kill()
        again.process.wait(10)
        _wait_for(lambda: not processes_mentioning(str(models_dir_copy))
                  and not processes_mentioning(gateway_marker), 30, "servers gone after SIGKILL of the stack")
        _wait_for(lambda: all(port_is_free(p) for p in ports), 30, "ports free after SIGKILL of the stack")
    finally:
        again.stop()
