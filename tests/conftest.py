"""Shared fixtures. A small model is trained once per test session by the real trainer
program (so every test that needs a model uses one the suite made itself)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.support import PYTHON, ROOT

# Small but real: enough rows that the model learns the buying rules, few enough to train
# in seconds on 2 cores.
TEST_ROWS = 20_000


@pytest.fixture(scope="session")
def purchases_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "purchases.csv"
    subprocess.run(
        [PYTHON, "-m", "trainer", "generate", "--rows", str(TEST_ROWS), "--seed", "7", "--out", str(path)],
        cwd=ROOT, check=True,
    )
    return path


@pytest.fixture(scope="session")
def trained_models_dir(tmp_path_factory, purchases_csv):
    """A model repository holding version 1, trained by the trainer CLI. Read-only for tests:
    copy it (see `models_dir_copy`) before publishing more versions into it."""
    models = tmp_path_factory.mktemp("models")
    subprocess.run(
        [PYTHON, "-m", "trainer", "train", "--data", str(purchases_csv), "--models-dir", str(models),
         "--seed", "7", "--quiet"],
        cwd=ROOT, check=True,
    )
    return models


@pytest.fixture
def models_dir_copy(tmp_path, trained_models_dir):
    target = tmp_path / "models"
    shutil.copytree(trained_models_dir, target)
    return target


# --------------------------------------------------------------------------- shared servers
# One inference server (2 workers, the suite's model) and one gateway in front of it serve
# every test package whose tests only call them (clients, inference, gateway, web, README):
# each inference worker imports TensorFlow (~2 s, ~600 MB), and each package used to start its
# own. Tests that kill, stop, freeze or reconfigure a server start their own.


@pytest.fixture(scope="session")
def shared_inference(trained_models_dir, tmp_path_factory):
    """`python -m inference` with 2 workers over `trained_models_dir` (read-only), metrics on."""
    from tests.support import run_server

    log = tmp_path_factory.mktemp("shared-inference") / "inference.log"
    with run_server(trained_models_dir, log, workers=2) as server:
        yield server


@pytest.fixture(scope="session")
def inference_target(shared_inference) -> str:
    """host:port of the shared inference server's shared port."""
    return shared_inference.target


@pytest.fixture(scope="session")
def gateway_target(inference_target, tmp_path_factory) -> str:
    """host:port of a gateway (local vectorizer, defaults) in front of the shared inference server."""
    from tests.support import ServerProcess, free_port, wait_for_health

    port = free_port()
    log = tmp_path_factory.mktemp("shared-gateway") / "gateway.log"
    with ServerProcess([PYTHON, "-m", "gateway", "serve", "--port", str(port), "--inference", inference_target,
                        "--metrics-port", "0"], log) as server:
        try:
            wait_for_health(f"127.0.0.1:{port}", timeout=60, process=server.process)
        except Exception:
            print(server.log())
            raise
        yield f"127.0.0.1:{port}"


# --------------------------------------------------------------------------- make run, once
FRESH_CLONE_CHAT = (
    "저는 30대 여성인데 운동할 때 쓸 거 찾아요. 예산은 30만원이에요\n"
    "Actually it's a gift for my dad who loves gaming, up to 500,000 won\n"
    "/quit\n"
)


@pytest.fixture(scope="session")
def fresh_clone_run(tmp_path_factory):
    """`make run` (`python -m clients.stack run`, what it calls after `make setup`) on a fresh
    clone: no data, no model. The stack generates the default data and trains the default model
    with exactly `make train`'s command, serves, chats (one Korean turn, one English turn,
    /quit) and stops. The suite's one run of the default training: tests/test_make_run.py checks
    the stack and the chat, tests/trainer/test_training.py the accuracy of that training.
    What is left running and which ports are busy is recorded the moment the chat ends."""
    from types import SimpleNamespace

    from tests.support import free_port, free_port_block, port_is_free, processes_mentioning

    tmp = tmp_path_factory.mktemp("fresh-clone")
    models, data = tmp / "models", tmp / "data" / "purchases.csv"
    inference_port = free_port_block(2)  # shared port + worker 0's own port
    gateway_port, edge_port = free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "INFERENCE_PORT": str(inference_port),
        "GATEWAY_PORT": str(gateway_port),
        "METRICS_PORT": str(free_port()),
        "GATEWAY_METRICS_PORT": str(free_port()),
        "MODELS_DIR": str(models),
        "DATA": str(data),
        "WORKERS": "1",
        "VECTORIZER": "local",
        "LOG_DIR": str(tmp / "logs"),
        "EDGE_PORT": str(edge_port),
        "EDGE_ADMIN_PORT": str(free_port()),
    }
    result = subprocess.run([PYTHON, "-m", "clients.stack", "run"], cwd=ROOT, env=env, input=FRESH_CLONE_CHAT,
                            capture_output=True, text=True, timeout=600)
    ports = (inference_port, inference_port + 1, gateway_port, edge_port)
    return SimpleNamespace(
        result=result, models=models, data=data, logs=tmp / "logs", gateway_port=gateway_port,
        edge_port=edge_port,
        left_running=processes_mentioning(str(models)) + processes_mentioning(f"--port {gateway_port}"),
        busy_ports=[port for port in ports if not port_is_free(port)],
    )
