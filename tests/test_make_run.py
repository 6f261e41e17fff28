"""`make run` as a user meets it: no model yet, one command trains it, starts the inference
server and the gateway, opens the chat; a scripted conversation on stdin (one Korean turn,
one English turn, then /quit) gets answers; leaving the chat stops everything it started.

Runs `python -m clients.stack run` (what `make run` calls after `make setup`) so the test does
not reinstall the virtualenv."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from recommender import model_repository, schema
from tests.support import PYTHON, ROOT, free_port, free_port_block

pytestmark = pytest.mark.slow

CHAT_MODULE = ROOT / "clients" / "chat.py"


def port_is_free(port: int) -> bool:
    """True when a new server could listen on `port`. SO_REUSEADDR, as servers set it, so
    connections of the stopped servers lingering in TIME_WAIT do not count as a listener."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def processes_mentioning(marker: str) -> list[str]:
    """Command lines of live processes that contain `marker` (a path unique to this test)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline and str(os.getpid()) != entry.name:
            found.append(f"{entry.name}: {cmdline}")
    return found


@pytest.mark.skipif(not CHAT_MODULE.exists(), reason="clients/chat.py (the interactive chat) does not exist yet")
def test_run_trains_serves_chats_and_stops_everything(tmp_path, purchases_csv):
    models = tmp_path / "fresh-models"  # a fresh clone has no model
    inference_port = free_port_block(2)  # shared port + worker 0's own port
    gateway_port = free_port()
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "INFERENCE_PORT": str(inference_port),
        "GATEWAY_PORT": str(gateway_port),
        "METRICS_PORT": str(free_port()),
        "GATEWAY_METRICS_PORT": str(free_port()),
        "MODELS_DIR": str(models),
        "DATA": str(purchases_csv),
        "WORKERS": "1",
        "VECTORIZER": "local",
        "LOG_DIR": str(tmp_path / "logs"),
    }
    script = (
        "저는 30대 여성인데 운동할 때 쓸 거 찾아요. 예산은 30만원이에요\n"
        "Actually it's a gift for my dad who loves gaming, up to 500,000 won\n"
        "/quit\n"
    )
    result = subprocess.run(
        [PYTHON, "-m", "clients.stack", "run"], cwd=ROOT, env=env, input=script,
        capture_output=True, text=True, timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert model_repository.latest_version(models) == 1, "the default model was not trained"
    # the bot answered both turns with products from the catalog, in both languages
    assert any(p.name_ko in result.stdout for p in schema.DEFAULT_CATALOG), result.stdout
    assert any(p.name_en in result.stdout for p in schema.DEFAULT_CATALOG), result.stdout
    assert "[stack] stopped" in result.stderr
    # everything it started is gone and the ports are free again
    assert processes_mentioning(str(models)) == []  # trainer, inference supervisor and workers
    assert processes_mentioning(f"--port {gateway_port}") == []  # the gateway
    for port in (inference_port, inference_port + 1, gateway_port):
        assert port_is_free(port), f"port {port} still in use after the chat ended"
    logs = (tmp_path / "logs" / "gateway.log").read_text()
    assert "event=gateway_stopped" in logs


def test_serve_runs_until_sigterm_then_stops_both_servers(tmp_path, models_dir_copy):
    """`make serve`: an existing model is used as is, both servers come up healthy behind the
    one command, and SIGTERM stops them all."""
    import grpc

    from recommender.v1 import recommend_pb2, recommend_pb2_grpc
    from tests.support import ServerProcess, wait_for_health

    inference_port, gateway_port = free_port_block(3), free_port()  # shared + 2 worker ports
    env = {
        "INFERENCE_PORT": str(inference_port), "GATEWAY_PORT": str(gateway_port),
        "METRICS_PORT": str(free_port()), "GATEWAY_METRICS_PORT": str(free_port()),
        "MODELS_DIR": str(models_dir_copy), "DATA": str(tmp_path / "unused.csv"), "WORKERS": "2",
    }
    stack = ServerProcess([PYTHON, "-m", "clients.stack", "serve"], tmp_path / "stack.log", env=env).start()
    try:
        wait_for_health(f"127.0.0.1:{gateway_port}", timeout=180, process=stack.process)
        with grpc.insecure_channel(f"127.0.0.1:{gateway_port}") as channel:
            reply = recommend_pb2_grpc.RecommendServiceStub(channel).Recommend(
                recommend_pb2.RecommendRequest(text="I need a laptop for coding, 2 million won"), timeout=10)
        assert reply.items and reply.model_version == 1
        assert "model version 1 found" in stack.log()
        # SIGTERM to the stack process only (not its group): it must stop its children itself
        stack.process.terminate()
        assert stack.process.wait(60) == 0, stack.log()
    finally:
        stack.stop()
    assert "[stack] stopped" in stack.log()
    assert processes_mentioning(str(models_dir_copy)) == []
    assert processes_mentioning(f"--port {gateway_port}") == []
    for port in (inference_port, inference_port + 1, inference_port + 2, gateway_port):
        assert port_is_free(port), f"port {port} still in use after SIGTERM"
