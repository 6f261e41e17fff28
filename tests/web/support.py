"""The web page's test stack: inference server, gateway and the project's edge (Envoy serving
web/ and transcoding /v1/chat) on free 127.0.0.1 ports, plus Debian's Chromium for Playwright.

Used by tests/web/conftest.py and by tests/web/screenshots.py.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from edge.config import EdgeConfig
from edge.runner import EdgeProcess
from tests.support import PYTHON, ServerProcess, free_port, wait_for_health

# Playwright's own browser download is unreachable here: Debian's package is used instead
# (`apt-get install chromium`; `make test` installs it when missing).
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-default-apps", "--disable-sync",
                 "--metrics-recording-only", "--mute-audio"]


def chromium_available() -> bool:
    return Path(CHROMIUM).is_file() and shutil.which(CHROMIUM) is not None


def start_inference(models_dir: Path, log_dir: Path) -> tuple[ServerProcess, str]:
    port = free_port()
    server = ServerProcess(
        [PYTHON, "-m", "inference", "--models-dir", str(models_dir), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--metrics-port", "0"], log_dir / "inference.log").start()
    target = f"127.0.0.1:{port}"
    _wait(server, target, 120)
    return server, target


def start_gateway(inference: str, log_dir: Path, name: str = "gateway",
                  extra_args: tuple[str, ...] = ()) -> tuple[ServerProcess, str]:
    port = free_port()
    server = ServerProcess([PYTHON, "-m", "gateway", "serve", "--port", str(port), "--inference", inference,
                            "--metrics-port", "0", *extra_args], log_dir / f"{name}.log").start()
    target = f"127.0.0.1:{port}"
    _wait(server, target, 60)
    return server, target


def start_edge(gateway: str, log_dir: Path, name: str = "edge") -> tuple[EdgeProcess, str]:
    """The project's edge (edge/: the generated Envoy config) in front of one gateway, plaintext
    on loopback as on the single-machine path. Returns the process and the page's URL."""
    config = EdgeConfig(gateways=[gateway], port=free_port(), admin_port=free_port(),
                        access_log=log_dir / f"{name}-access.log")
    edge = EdgeProcess(config, log_path=log_dir / f"{name}.log").start()
    try:
        edge.wait_ready(timeout=60)
    except Exception:
        edge.stop()
        raise
    return edge, f"http://127.0.0.1:{config.port}/"


def _wait(server: ServerProcess, target: str, timeout: float) -> None:
    try:
        wait_for_health(target, timeout=timeout, process=server.process)
    except Exception:
        print(server.log())
        server.stop()
        raise
