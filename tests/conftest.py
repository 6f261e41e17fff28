"""Shared fixtures. A small model is trained once per test session by the real trainer
program (so every test that needs a model uses one the suite made itself)."""

from __future__ import annotations

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
