"""`make serve` / `make run`: the whole recommender on one machine.

    python -m clients.stack serve   # train if needed, start inference + gateway, wait for Ctrl-C
    python -m clients.stack run     # the same, then the interactive chat; leaving it stops all

Configured by environment variables (the Makefile passes them): INFERENCE_PORT (8500),
GATEWAY_PORT (50051), METRICS_PORT (9100), GATEWAY_METRICS_PORT (9101), MODELS_DIR (models),
DATA (data/purchases.csv), WORKERS (inference worker processes, default: CPU count up to 4),
VECTORIZER (local), LOG_DIR (logs; `run` writes the servers' logs there so the chat stays
readable, `serve` prints them).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from recommender import model_repository

HOST = "127.0.0.1"


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "")
    return value if value.strip() else default


@dataclass
class StackConfig:
    inference_port: int
    gateway_port: int
    metrics_port: int
    gateway_metrics_port: int
    models_dir: Path
    data: Path
    workers: int
    vectorizer: str
    log_dir: Path

    @classmethod
    def from_env(cls) -> StackConfig:
        return cls(
            inference_port=int(_env("INFERENCE_PORT", "8500")),
            gateway_port=int(_env("GATEWAY_PORT", "50051")),
            metrics_port=int(_env("METRICS_PORT", "9100")),
            gateway_metrics_port=int(_env("GATEWAY_METRICS_PORT", "9101")),
            models_dir=Path(_env("MODELS_DIR", "models")),
            data=Path(_env("DATA", "data/purchases.csv")),
            workers=int(_env("WORKERS", str(max(1, min(4, os.cpu_count() or 1))))),
            vectorizer=_env("VECTORIZER", "local"),
            log_dir=Path(_env("LOG_DIR", "logs")),
        )

    @property
    def worker_ports(self) -> list[int]:
        """Each inference worker also listens on its own port, so the gateway's round-robin
        channel holds one connection per worker instead of one to a shared port."""
        return [self.inference_port + 1 + i for i in range(self.workers)]


def say(message: str) -> None:
    print(f"[stack] {message}", file=sys.stderr, flush=True)


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return True
    return False


def ensure_model(config: StackConfig) -> None:
    """Train the default model when the repository has no version yet (a fresh clone)."""
    version = model_repository.latest_version(config.models_dir)
    if version is not None:
        say(f"model version {version} found in {config.models_dir}")
        return
    say(f"no model in {config.models_dir}: training the default model (takes a minute)")
    subprocess.run(
        [sys.executable, "-m", "trainer", "train", "--data", str(config.data),
         "--models-dir", str(config.models_dir), "--generate-if-missing"],
        check=True,
    )


def wait_healthy(target: str, process: subprocess.Popen, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with code {process.returncode} while starting")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            except grpc.RpcError as exc:
                last = exc.code().name
            time.sleep(0.2)
    raise TimeoutError(f"{name} at {target} not healthy after {timeout:.0f}s (last: {last})")


class Stack:
    """The inference server and the gateway as child processes, stopped together."""

    def __init__(self, config: StackConfig, quiet: bool):
        self.config = config
        self.quiet = quiet  # `run`: server logs go to files, the terminal belongs to the chat
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self._logs: list = []

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        output = None
        if self.quiet:
            self.config.log_dir.mkdir(parents=True, exist_ok=True)
            path = self.config.log_dir / f"{name}.log"
            output = open(path, "ab")  # noqa: SIM115 - closed in stop()
            self._logs.append(output)
            say(f"{name} logs: {path}")
        process = subprocess.Popen(
            [sys.executable, "-m", *args], stdout=output, stderr=subprocess.STDOUT if output else None,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # own process group: Ctrl-C in the chat does not reach it
        )
        self.processes.append((name, process))
        return process

    def start(self) -> None:
        c = self.config
        busy = [p for p in (c.inference_port, *c.worker_ports, c.gateway_port) if port_in_use(p)]
        if busy:
            raise RuntimeError(f"port(s) {', '.join(map(str, busy))} already in use on {HOST}: "
                               "stop what uses them or set INFERENCE_PORT / GATEWAY_PORT")
        ensure_model(c)
        inference = self._spawn("inference", [
            "inference", "--models-dir", str(c.models_dir), "--port", str(c.inference_port),
            "--workers", str(c.workers), "--metrics-port", str(c.metrics_port)])
        say(f"starting inference on {HOST}:{c.inference_port} ({c.workers} workers)")
        wait_healthy(f"{HOST}:{c.inference_port}", inference, "inference", timeout=180)
        gateway = self._spawn("gateway", [
            "gateway", "serve", "--host", HOST, "--port", str(c.gateway_port),
            "--inference", ",".join(f"{HOST}:{p}" for p in c.worker_ports),
            "--vectorizer", c.vectorizer, "--metrics-port", str(c.gateway_metrics_port)])
        say(f"starting gateway on {HOST}:{c.gateway_port}")
        wait_healthy(f"{HOST}:{c.gateway_port}", gateway, "gateway", timeout=60)
        say(f"ready: gateway {HOST}:{c.gateway_port}, inference {HOST}:{c.inference_port}, "
            f"metrics :{c.gateway_metrics_port} (gateway) :{c.metrics_port} (inference)")

    def exited(self) -> str | None:
        for name, process in self.processes:
            if process.poll() is not None:
                return f"{name} exited with code {process.returncode}"
        return None

    def stop(self, timeout: float = 15.0) -> None:
        """Gateway first (it stops taking customers), then inference; SIGTERM each whole
        process group, SIGKILL whatever is still there after `timeout`."""
        for name, process in reversed(self.processes):
            if process.poll() is None:
                say(f"stopping {name}")
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                say(f"{name} did not stop in {timeout:.0f}s: killing it")
            try:
                os.killpg(process.pid, signal.SIGKILL)  # leftover workers of the group
            except (ProcessLookupError, PermissionError):
                pass
            process.wait()
        self.processes.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()


def _raise_on_sigterm(signum, _frame):
    raise KeyboardInterrupt  # unwinds into the `finally` that stops the servers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clients.stack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("serve", "run"))
    args = parser.parse_args(argv)
    config = StackConfig.from_env()
    stack = Stack(config, quiet=args.command == "run")
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        stack.start()
        if args.command == "run":
            from clients import chat

            return chat.main(["--target", f"{HOST}:{config.gateway_port}"]) or 0
        say("serving; Ctrl-C stops everything")
        while (problem := stack.exited()) is None:
            time.sleep(0.5)
        say(problem)
        return 1
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, TimeoutError, subprocess.CalledProcessError) as exc:
        say(f"error: {exc}")
        return 1
    finally:
        stack.stop()
        say("stopped")


if __name__ == "__main__":
    sys.exit(main())
