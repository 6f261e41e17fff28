"""The stack the soak runs against: `python -m clients.stack cluster` (the code path of
`make cluster`: Envoy with TLS, 2 gateway replicas, inference with 2 workers, TLS and caller
tokens on every hop) on free 127.0.0.1 ports, in a temporary folder with its own model, its
own dev CA and tokens, and its own logs. Plus what the events need: the processes by role,
direct (mTLS) probes of each inference worker, the model repository.

    with SoakStack.create(train_rows=20_000) as stack:
        stack.start()
        stack.processes().pids["worker-0"]
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.soak.processes import ProcessMap, resume
from edge.runner import EnvoyAdmin, die_with_parent
from recommender import model_repository, settings

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
TLS_NAME = "localhost"  # the dev server certificate names 127.0.0.1 and localhost
PROBE_FEATURES = [35, 1, 300_000, 2, 1, 0]


def say(message: str) -> None:
    print(f"[soak] {message}", file=sys.stderr, flush=True)


def free_port_block(count: int, attempts: int = 50) -> int:
    """A port p with p .. p+count-1 all free on 127.0.0.1 (inference: shared port + workers)."""
    for _ in range(attempts):
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            base = probe.getsockname()[1]
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                sockets.append(s)
                s.bind((HOST, port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError(f"no block of {count} free ports on {HOST}")


def port_is_free(port: int) -> bool:
    """True when a server could listen on `port` (SO_REUSEADDR, as servers bind: connections
    in TIME_WAIT do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


@dataclass
class Ports:
    inference: int
    gateway: int
    public: int
    admin: int
    metrics: int
    gateway_metrics: int
    workers: int = 2
    replicas: int = 2

    @classmethod
    def free(cls, workers: int = 2, replicas: int = 2) -> Ports:
        return cls(inference=free_port_block(workers + 1), gateway=free_port_block(replicas),
                   public=free_port_block(1), admin=free_port_block(1), metrics=free_port_block(1),
                   gateway_metrics=free_port_block(replicas), workers=workers, replicas=replicas)

    def worker(self, index: int) -> int:
        return settings.worker_port(self.inference, index)

    def all(self) -> list[int]:
        return [self.inference, *(self.worker(i) for i in range(self.workers)),
                *(self.gateway_replica(i) for i in range(self.replicas)), self.public, self.admin]

    def gateway_replica(self, index: int) -> int:
        return self.gateway + index


def prepare_model(models_dir: Path, work: Path, source: Path | None, train_rows: int) -> str:
    """Version 1 in `models_dir`: a copy of `source`'s newest version, or a small model trained
    here by the trainer CLI. Returns how it was made."""
    if source is not None:
        version = model_repository.latest_version(source)
        if version is None:
            raise RuntimeError(f"no model version in {source}")
        staged = model_repository.staging_dir(models_dir)
        shutil.rmtree(staged)
        shutil.copytree(model_repository.version_dir(source, version), staged)
        model_repository.publish(staged, models_dir)
        return f"copy of {source} version {version}"
    data = work / "purchases.csv"
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "trainer", "generate", "--rows", str(train_rows), "--seed", "7",
                    "--out", str(data)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "trainer", "train", "--data", str(data), "--models-dir",
                    str(models_dir), "--seed", "7", "--quiet"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return f"trained on {train_rows:,} rows in {time.monotonic() - started:.0f} s"


class SoakStack:
    def __init__(self, work: Path, ports: Ports, keep: bool = False):
        self.work = work
        self.ports = ports
        self.keep = keep
        self.models_dir = work / "models"
        self.secrets = work / "secrets"
        self.logs = work / "logs"
        self.process: subprocess.Popen | None = None
        self._output = None
        self.seen_pids: set[int] = set()
        self.stopped_pids: set[int] = set()  # SIGSTOPped by an event: always SIGCONTed on stop

    @classmethod
    def create(cls, keep: bool = False) -> SoakStack:
        work = Path(tempfile.mkdtemp(prefix="soak-"))
        return cls(work, Ports.free(), keep)

    # -- files

    @property
    def stack_log(self) -> Path:
        return self.work / "stack.log"

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def token(self, caller: str = "dev") -> str:
        return (self.secrets / f"{caller}.token").read_text().strip()

    def ca(self) -> bytes:
        return (self.secrets / "ca.pem").read_bytes()

    def caller_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token()}"),)

    def gateway_identity(self) -> tuple[tuple[str, str], ...]:
        """How the gateway calls inference: its client certificate (channel) and its token."""
        return (("authorization", f"Bearer {self.token('gateway')}"),)

    # -- lifecycle

    def environment(self) -> dict[str, str]:
        p = self.ports
        return {
            **os.environ, "PYTHONUNBUFFERED": "1",
            "INFERENCE_PORT": str(p.inference), "GATEWAY_PORT": str(p.gateway), "CLUSTER_PORT": str(p.public),
            "EDGE_ADMIN_PORT": str(p.admin), "METRICS_PORT": str(p.metrics),
            "GATEWAY_METRICS_PORT": str(p.gateway_metrics), "WORKERS": str(p.workers),
            "GATEWAY_REPLICAS": str(p.replicas), "MODELS_DIR": str(self.models_dir),
            "DATA": str(self.work / "purchases.csv"), "SECRETS_DIR": str(self.secrets),
            "LOG_DIR": str(self.logs), "VECTORIZER": "local",
        }

    def start(self, timeout: float = 300.0) -> float:
        """Start the cluster and wait for its `ready:` line; returns the seconds it took."""
        started = time.monotonic()
        self._output = open(self.stack_log, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "clients.stack", "cluster"], cwd=ROOT, env=self.environment(),
            stdout=self._output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=die_with_parent)
        expected = f"ready: https://{HOST}:{self.ports.public}"
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"the cluster exited with code {self.process.returncode} while starting; "
                                   f"last lines of {self.stack_log}:\n{self._tail()}")
            if expected in self.stack_log.read_text(errors="replace"):
                self.remember(self.processes())
                return time.monotonic() - started
            time.sleep(0.3)
        raise TimeoutError(f"the cluster did not print '{expected}' within {timeout:.0f} s:\n{self._tail()}")

    def _tail(self, lines: int = 15) -> str:
        text = self.stack_log.read_text(errors="replace") if self.stack_log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def processes(self) -> ProcessMap:
        return ProcessMap.discover(self.process.pid, self.ports.gateway)

    def remember(self, processes: ProcessMap) -> None:
        self.seen_pids.update(processes.pids.values())

    def stop(self) -> list[str]:
        """SIGTERM the stack (it stops its servers); returns what it left behind (issue 15's
        supervision: a server still running, a port still bound, Envoy's temporary folder), each
        of which is then removed (SIGKILL, rmtree)."""
        for pid in self.stopped_pids:
            resume(pid)
        leftovers: list[str] = []
        if self.process is not None:
            stack_pid = self.process.pid
            try:
                self.remember(self.processes())
            except OSError:
                pass
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(40)
                except subprocess.TimeoutExpired:
                    leftovers.append("the stack did not stop within 40 s of SIGTERM")
                    self.process.kill()
                    self.process.wait()
            markers = (str(self.work).encode(), f"edge-{stack_pid}-".encode())
            alive = self._alive(markers)
            deadline = time.monotonic() + 5.0  # PR_SET_PDEATHSIG's SIGTERM takes a moment
            while alive and time.monotonic() < deadline:
                time.sleep(0.2)
                alive = self._alive(markers)
            for pid, args in alive.items():
                leftovers.append(f"pid {pid} still running: {args[:120]}")
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            busy = [p for p in self.ports.all() if not port_is_free(p)]
            if busy:
                leftovers.append(f"ports still bound: {', '.join(map(str, busy))}")
            for folder in Path(tempfile.gettempdir()).glob(f"edge-{stack_pid}-*"):
                leftovers.append(f"Envoy's folder {folder} left behind")
                shutil.rmtree(folder, ignore_errors=True)
            self.process = None
        if self._output is not None:
            self._output.close()
            self._output = None
        return leftovers

    def _alive(self, markers: tuple[bytes, ...]) -> dict[int, str]:
        """Processes we saw under the stack that still run (same pid, a command line naming
        our folder or the stack's Envoy folder: never someone else's reused pid)."""
        alive = {}
        for pid in self.seen_pids:
            try:
                raw = (Path("/proc") / str(pid) / "cmdline").read_bytes()
            except OSError:
                continue
            if any(marker in raw for marker in markers):
                alive[pid] = raw.replace(b"\0", b" ").decode(errors="replace")
        return alive

    def cleanup(self) -> None:
        if not self.keep:
            shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self) -> SoakStack:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        self.cleanup()

    # -- channels and probes

    def edge_target(self) -> str:
        return f"{TLS_NAME}:{self.ports.public}"

    def gateway_target(self, index: int) -> str:
        return f"{TLS_NAME}:{self.ports.gateway_replica(index)}"

    def inference_target(self, worker: int | None = None) -> str:
        """The shared inference port, or one worker's own port."""
        port = self.ports.inference if worker is None else self.ports.worker(worker)
        return f"{TLS_NAME}:{port}"

    def caller_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(self.ca())

    def gateway_credentials(self) -> grpc.ChannelCredentials:
        """mTLS as a gateway (inference requires a client certificate of the dev CA)."""
        return grpc.ssl_channel_credentials(self.ca(), (self.secrets / "client.key").read_bytes(),
                                            (self.secrets / "client.pem").read_bytes())

    def admin(self) -> EnvoyAdmin:
        return EnvoyAdmin(self.ports.admin)

    def worker_serving(self, index: int, timeout: float = 1.0) -> bool:
        """Health of one worker on its own port (a fresh channel: no reconnect backoff)."""
        try:
            with grpc.secure_channel(self.inference_target(index), self.gateway_credentials()) as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
            return reply.status == health_pb2.HealthCheckResponse.SERVING
        except grpc.RpcError:
            return False

    def worker_version(self, index: int, timeout: float = 2.0) -> int | None:
        """The model version worker `index` answers with now (None: no answer)."""
        from recommender.v1 import recommend_pb2, recommend_pb2_grpc

        try:
            with grpc.secure_channel(self.inference_target(index), self.gateway_credentials()) as channel:
                reply = recommend_pb2_grpc.RecommendServiceStub(channel).Recommend(
                    recommend_pb2.RecommendRequest(features=PROBE_FEATURES), timeout=timeout,
                    metadata=self.gateway_identity())
            return reply.model_version
        except grpc.RpcError:
            return None
