"""Child servers of the stack: started so they die with it, restarted with backoff when they
crash, stopped together.

- Every child gets PR_SET_PDEATHSIG(SIGTERM) before exec: when the stack process dies, even by
  SIGKILL, the kernel sends each child SIGTERM, so no orphan keeps serving or holding a port.
  Each child also leads its own process group (Ctrl-C in the chat does not reach it; stop()
  signals the whole group so an inference server's workers go too).
- A child that exits while the stack runs is started again: at once when it had been up for
  HEALTHY_UPTIME_S, otherwise after a delay that doubles up to MAX_RESTART_DELAY_S (the same
  rule as the inference supervisor's for its workers), so a server that cannot start does
  not spin the CPU.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from edge.runner import die_with_parent

HEALTHY_UPTIME_S = 10.0
MAX_RESTART_DELAY_S = 10.0
FIRST_RESTART_DELAY_S = 0.5


def say(message: str) -> None:
    print(f"[stack] {message}", file=sys.stderr, flush=True)


def spawn(command: list[str], output: IO | None = None, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        command, stdout=output, stderr=subprocess.STDOUT if output else None, stdin=subprocess.DEVNULL,
        env=env, start_new_session=True, preexec_fn=die_with_parent)


@dataclass
class Child:
    name: str
    start: Callable[[], subprocess.Popen]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    delay: float = 0.0
    next_start: float = 0.0

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid


class Supervisor:
    """Children in start order; stop() goes in reverse order."""

    def __init__(self, log_dir: Path | None = None):
        self.log_dir = log_dir  # None: children write to this terminal
        self.children: list[Child] = []
        self._logs: list[IO] = []

    def _output(self, name: str) -> IO | None:
        if self.log_dir is None:
            return None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self._logs.append(handle)
        return handle

    def log_path(self, name: str) -> Path | None:
        return None if self.log_dir is None else self.log_dir / f"{name}.log"

    def add_command(self, name: str, command: list[str], env: dict | None = None) -> Child:
        output = self._output(name)
        if output is not None:
            say(f"{name} logs: {self.log_path(name)}")
        return self.add(name, lambda: spawn(command, output, env))

    def add(self, name: str, start: Callable[[], subprocess.Popen]) -> Child:
        child = Child(name, start)
        self.children.append(child)
        self._start(child)
        return child

    def _start(self, child: Child) -> None:
        child.process = child.start()
        child.started_at = time.monotonic()

    def check(self) -> list[str]:
        """Restart children that exited (after their backoff). Returns one line per event."""
        events = []
        now = time.monotonic()
        for child in self.children:
            if child.process is not None and child.process.poll() is not None:
                uptime = now - child.started_at
                child.delay = 0.0 if uptime >= HEALTHY_UPTIME_S else min(
                    MAX_RESTART_DELAY_S, max(FIRST_RESTART_DELAY_S, child.delay * 2))
                child.next_start = now + child.delay
                events.append(f"{child.name} (pid {child.process.pid}) exited with code "
                              f"{child.process.returncode} after {uptime:.1f}s: restarting in {child.delay:.1f}s")
                _kill_group(child.process)  # whatever it left behind (an inference server's workers)
                child.process.wait()
                child.process = None
            if child.process is None and now >= child.next_start:
                self._start(child)
                child.restarts += 1
                events.append(f"{child.name} restarted (pid {child.process.pid}, restart {child.restarts})")
        return events

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM each child's process group in reverse start order (the front door first),
        SIGKILL what is left after `timeout`."""
        for child in reversed(self.children):
            process = child.process
            if process is None:
                continue
            if process.poll() is None:
                say(f"stopping {child.name}")
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    say(f"{child.name} did not stop in {timeout:.0f}s: killing it")
            _kill_group(process)
            process.wait()
            child.process = None
        self.children.clear()
        for handle in self._logs:
            handle.close()
        self._logs.clear()


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
