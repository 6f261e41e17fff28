"""Helpers for tests that start real processes: free ports, health waits, clean stops.

Every process started here listens on 127.0.0.1 only and is stopped (SIGTERM, then
SIGKILL) by the fixture that started it, even when the test fails.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from edge.runner import die_with_parent
from recommender import settings

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_block(count: int, attempts: int = 50) -> int:
    """A port p such that p .. p+count-1 are all free (an inference server's shared port
    plus one per worker)."""
    for _ in range(attempts):
        base = free_port()
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError(f"no block of {count} free ports found")


def port_is_free(port: int) -> bool:
    """True when a new server could listen on `port`. SO_REUSEADDR, as servers set it, so
    connections of stopped servers lingering in TIME_WAIT do not count as a listener."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def processes_mentioning(marker: str) -> list[str]:
    """`pid: command line` of live processes whose command line contains `marker` (a path or
    flag unique to one test), this process excluded."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or entry.name == str(os.getpid()):
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def wait_for_health(target: str, timeout: float = 60.0, service: str = "",
                    process: subprocess.Popen | None = None) -> None:
    """Block until grpc.health.v1 reports SERVING for `service` at `target`."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"process for {target} exited with {process.returncode}")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            except grpc.RpcError as exc:
                last = f"{exc.code().name}: {exc.details()}"
            time.sleep(0.2)
    raise TimeoutError(f"{target} not SERVING after {timeout}s (last: {last})")


class ServerProcess:
    """A server started as a real process; use as a context manager."""

    def __init__(self, args: list[str], log_path: Path, env: dict | None = None):
        self.args = args
        self.log_path = log_path
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.process: subprocess.Popen | None = None

    def start(self) -> ServerProcess:
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.args, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so workers die with it
            # and the server dies with the test run, even a pytest that is killed or crashes
            preexec_fn=die_with_parent,
        )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of the group (workers) goes too.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()
        return self.process.returncode

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class RunningServer:
    """An inference server started by `run_server`: its ports, channels, metrics and log."""

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
    """`python -m inference` on free ports (shared port + one per worker, metrics port)."""
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
            try:
                server.wait_ready()
            except Exception:
                print(server.log())
                raise
        yield server
