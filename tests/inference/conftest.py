"""Fixtures that start the inference server as a real process (127.0.0.1, free ports)."""

from __future__ import annotations

import urllib.request
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest

from recommender import settings
from tests.support import PYTHON, ServerProcess, free_port, free_port_block, wait_for_health


class RunningServer:
    def __init__(self, process: ServerProcess, port: int, workers: int, metrics_port: int):
        self.server = process
        self.port = port
        self.workers = workers
        self.metrics_port = metrics_port

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def worker_port(self, index: int) -> int:
        return settings.worker_port(self.port, index)

    @property
    def round_robin_target(self) -> str:
        return "ipv4:" + settings.worker_addresses(self.port, self.workers)

    def channel(self, target: str | None = None) -> grpc.Channel:
        return grpc.insecure_channel(target or self.target,
                                     options=[("grpc.lb_policy_name", "round_robin")])

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as reply:
            return reply.read().decode()

    def log(self) -> str:
        return self.server.log()

    def wait_ready(self, timeout: float = 90.0) -> None:
        for i in range(self.workers):
            wait_for_health(f"127.0.0.1:{self.worker_port(i)}", timeout=timeout, process=self.server.process)


@contextmanager
def run_server(models_dir, log_path: Path, workers: int = 2, wait: bool = True, extra: list[str] = ()):
    port = free_port_block(workers + 1)
    metrics_port = free_port()
    process = ServerProcess(
        [PYTHON, "-m", "inference", "--models-dir", str(models_dir), "--port", str(port),
         "--workers", str(workers), "--metrics-port", str(metrics_port), "--poll-interval-s", "0.3",
         *extra],
        log_path)
    with process:
        server = RunningServer(process, port, workers, metrics_port)
        if wait:
            server.wait_ready()
        yield server


@pytest.fixture(scope="session")
def served_models_dir(trained_models_dir):
    """The model the suite trained with the real trainer CLI (version 1)."""
    return trained_models_dir


@pytest.fixture(scope="module")
def shared_server(served_models_dir, tmp_path_factory):
    """One 2-worker server for the read-only tests of a module."""
    log = tmp_path_factory.mktemp("inference-log") / "server.log"
    with run_server(served_models_dir, log, workers=2) as server:
        yield server
