"""A real inference server (one worker) on a free port, shared by the client tests."""

from __future__ import annotations

import pytest

from tests.support import PYTHON, ServerProcess, free_port, wait_for_health


@pytest.fixture(scope="session")
def inference_target(trained_models_dir, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("inference-log") / "inference.log"
    server = ServerProcess(
        [PYTHON, "-m", "inference", "--models-dir", str(trained_models_dir), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1", "--metrics-port", "0"],
        log,
    )
    with server:
        try:
            wait_for_health(f"127.0.0.1:{port}", timeout=90, process=server.process)
        except Exception:
            print(server.log())
            raise
        yield f"127.0.0.1:{port}"


@pytest.fixture(scope="session")
def gateway_target(inference_target, tmp_path_factory):
    pytest.importorskip("gateway.vectorizers.local")
    port = free_port()
    log = tmp_path_factory.mktemp("gateway-log") / "gateway.log"
    with ServerProcess([PYTHON, "-m", "gateway", "serve", "--port", str(port), "--inference", inference_target,
                        "--metrics-port", "0"], log) as server:
        try:
            wait_for_health(f"127.0.0.1:{port}", timeout=60, process=server.process)
        except Exception:
            print(server.log())
            raise
        yield f"127.0.0.1:{port}"
