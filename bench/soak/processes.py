"""The stack's processes as the soak sees them: who is who (by parent and command line, read
from /proc), and their resident memory.

Roles: `gateway-1`, `gateway-2`, … (children of the stack, by `--port`), `inference` (the
worker supervisor), `worker-0`, `worker-1`, … (children of inference, by `--worker-index`),
`envoy`. Linux only (/proc), like the stack's PR_SET_PDEATHSIG.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


def parse_vmrss(status_text: str) -> int | None:
    """Bytes of `VmRSS:` in a /proc/<pid>/status text (None for a zombie or kernel thread,
    which have no such line)."""
    for line in status_text.splitlines():
        if line.startswith("VmRSS:"):
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                unit = fields[2].lower() if len(fields) > 2 else "kb"
                scale = {"kb": 1024, "mb": 1024 ** 2, "gb": 1024 ** 3}.get(unit, 1024)
                return int(fields[1]) * scale
    return None


def rss_bytes(pid: int, proc: Path = PROC) -> int | None:
    """Resident memory of `pid` now, or None when it is gone."""
    try:
        return parse_vmrss((proc / str(pid) / "status").read_text())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def parse_stat_ppid(stat_text: str) -> int:
    """The parent pid from a /proc/<pid>/stat line (the command name may hold spaces and
    parentheses, so fields are counted after the last ')')."""
    return int(stat_text[stat_text.rindex(")") + 2:].split()[1])


def cmdline(pid: int, proc: Path = PROC) -> list[str]:
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def children(pid: int, proc: Path = PROC) -> list[int]:
    """Live child pids of `pid` (a scan of /proc: works without CONFIG_PROC_CHILDREN)."""
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if parse_stat_ppid((entry / "stat").read_text()) == pid:
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return sorted(found)


def flag_value(args: list[str], flag: str) -> str | None:
    for i, arg in enumerate(args[:-1]):
        if arg == flag:
            return args[i + 1]
    return None


def role_of(args: list[str], gateway_port: int) -> str | None:
    """The role of a stack child or inference child from its command line."""
    if not args:
        return None
    if Path(args[0]).name == "envoy":
        return "envoy"
    if "-m" in args:
        module = flag_value(args, "-m")
        if module == "inference":
            index = flag_value(args, "--worker-index")
            return "inference" if index is None else f"worker-{index}"
        if module == "gateway":
            port = flag_value(args, "--port")
            return f"gateway-{int(port) - gateway_port + 1}" if port and port.isdigit() else "gateway"
    return None


@dataclass(frozen=True)
class ProcessMap:
    """Role -> pid, found under the stack process."""

    pids: dict[str, int]

    @classmethod
    def discover(cls, stack_pid: int, gateway_port: int, proc: Path = PROC) -> ProcessMap:
        pids: dict[str, int] = {}
        for child in children(stack_pid, proc):
            role = role_of(cmdline(child, proc), gateway_port)
            if role is None:
                continue
            pids[role] = child
            if role == "inference":
                for worker in children(child, proc):
                    worker_role = role_of(cmdline(worker, proc), gateway_port)
                    if worker_role and worker_role.startswith("worker-"):
                        pids[worker_role] = worker
        return cls(pids)

    def rss(self, proc: Path = PROC) -> dict[str, int | None]:
        return {role: rss_bytes(pid, proc) for role, pid in self.pids.items()}


def role_order(roles) -> list[str]:
    """Gateways, inference, workers, envoy: the table's column order."""
    def key(role: str):
        kind, _, index = role.partition("-")
        rank = {"gateway": 0, "inference": 1, "worker": 2, "envoy": 3}.get(kind, 4)
        return rank, int(index) if index.isdigit() else 0
    return sorted(roles, key=key)


def signal_if_alive(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def resume(pid: int) -> None:
    """SIGCONT; harmless on a running or vanished process."""
    signal_if_alive(pid, signal.SIGCONT)
