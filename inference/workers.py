"""The supervisor: starts N worker processes, restarts any that die, forwards SIGTERM,
and serves the aggregated Prometheus metrics. It never imports TensorFlow itself.

Each worker listens on the shared --port (SO_REUSEPORT: the kernel spreads *connections*)
and on its own port --port+1+i, so a client holding one channel with the round_robin
policy over the worker ports spreads *requests* evenly.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from inference.metrics import MULTIPROC_ENV
from recommender.settings import InferenceSettings

log = logging.getLogger("inference.workers")

# A worker that dies sooner than this after starting is restarted with a growing delay,
# so a worker that can never start does not spin the CPU.
HEALTHY_UPTIME_S = 10.0
MAX_RESTART_DELAY_S = 5.0


@dataclasses.dataclass
class Worker:
    index: int
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    next_start: float = 0.0
    delay: float = 0.0


class Supervisor:
    def __init__(self, config: InferenceSettings):
        self.config = config
        self.workers = [Worker(i) for i in range(config.workers)]
        self.stopping = threading.Event()
        self._restarts = None

    def _command(self, index: int) -> list[str]:
        return [sys.executable, "-m", "inference", "--worker-index", str(index),
                "--worker-config", json.dumps(dataclasses.asdict(self.config))]

    def _start(self, worker: Worker) -> None:
        worker.process = subprocess.Popen(self._command(worker.index), env=os.environ.copy())
        worker.started_at = time.monotonic()
        log.info("event=worker_started worker=%d pid=%d own_port=%d", worker.index, worker.process.pid,
                 self.config.worker_port(worker.index))

    def _reap(self, worker: Worker) -> None:
        from inference.metrics import worker_died

        code = worker.process.returncode
        worker_died(worker.process.pid)
        uptime = time.monotonic() - worker.started_at
        worker.delay = 0.0 if uptime >= HEALTHY_UPTIME_S else min(MAX_RESTART_DELAY_S, max(0.5, worker.delay * 2))
        worker.next_start = time.monotonic() + worker.delay
        worker.restarts += 1
        self._restarts.labels(str(worker.index)).inc()
        log.error("event=worker_died worker=%d pid=%d exit_code=%s uptime_s=%.1f restart_in_s=%.1f",
                  worker.index, worker.process.pid, code, uptime, worker.delay)
        worker.process = None

    def run(self) -> int:
        """Supervise until SIGTERM/SIGINT. The metrics folder made here is removed on the way
        out (one given through the environment belongs to whoever set it)."""
        owned_folder = None
        if not os.environ.get(MULTIPROC_ENV):
            owned_folder = os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="inference-metrics-")
        try:
            return self._run()
        finally:
            if owned_folder is not None:
                shutil.rmtree(owned_folder, ignore_errors=True)

    def _run(self) -> int:
        from inference.metrics import serve_aggregated, supervisor_metrics

        self._restarts = supervisor_metrics()
        if self.config.metrics_port:
            try:
                serve_aggregated(self.config.metrics_port, self.config.host)
            except OSError as exc:
                log.error("event=metrics_port_unavailable port=%d reason=%r; pass a free --metrics-port "
                          "or 0 to disable metrics", self.config.metrics_port, str(exc))
                return 2
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())

        ports = ",".join(f"{self.config.host}:{p}" for p in self.config.worker_ports())
        log.info("event=starting workers=%d shared_port=%d worker_ports=%s metrics_port=%d "
                 "round_robin_target=ipv4:%s models_dir=%s",
                 self.config.workers, self.config.port,
                 ",".join(str(p) for p in self.config.worker_ports()), self.config.metrics_port,
                 ports, self.config.models_dir)
        for worker in self.workers:
            self._start(worker)

        while not self.stopping.wait(0.2):
            for worker in self.workers:
                if worker.process is not None and worker.process.poll() is not None:
                    self._reap(worker)
                if worker.process is None and time.monotonic() >= worker.next_start:
                    self._start(worker)
        return self._shutdown()

    def _shutdown(self) -> int:
        log.info("event=stopping workers=%d", len(self.workers))
        live = [w.process for w in self.workers if w.process is not None]
        for process in live:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.config.drain_timeout_s + 10.0
        for process in live:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("event=worker_kill pid=%d reason=drain_timeout", process.pid)
                process.kill()
                process.wait()
        log.info("event=stopped")
        return 0
