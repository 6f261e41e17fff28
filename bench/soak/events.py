"""The chaos events, one after the other under the running load. Each does its harm, waits
until the stack is whole again (the event's "recovery"), and is timed so that the calls made
meanwhile can be judged. Nothing here decides pass or fail (bench/soak/report.py does).

| event          | harm                                   | recovered when                               |
|----------------|----------------------------------------|----------------------------------------------|
| worker-kill    | SIGKILL inference worker 1             | a new worker 1 answers health on its port    |
| worker-stop    | SIGSTOP worker 0 for 20 s, SIGCONT     | worker 0 answers health again after SIGCONT  |
| replica-kill   | SIGKILL gateway replica 1              | restarted, and Envoy sees every replica up   |
| new-version    | publish a copy of version 1 as next    | every worker answers with the new version    |
| corrupt-version| publish a version that cannot load     | every worker logged the failure, still serves|
| message-flood  | 16 x 63.9 MiB to a gateway, to inference| RSS of every process within 20 % of before   |
| stream-flood   | held streams + bursts at a gateway     | RSS of every process within 20 % of before   |
"""

from __future__ import annotations

import re
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.soak import floods
from bench.soak.processes import ProcessMap, resume, signal_if_alive
from bench.soak.stack import SoakStack, say
from recommender import model_repository
from recommender.model_repository import ModelMetadata
from recommender.schema import DEFAULT_CATALOG

RSS_TOLERANCE = 0.20  # a flood's budget: back within 20 % of the RSS before it
RSS_SETTLE_S = 10.0  # … this long after the flood ended
SETTLE_S = 2.0  # load keeps running this long after recovery, inside the event's window


@dataclass
class EventResult:
    name: str
    kind: str  # soak | kill | stop | swap | flood
    started: float  # monotonic: the harm (the window's start)
    ended: float  # monotonic: the window's end
    recovery_s: float | None  # None: not whole again within the timeout
    recovery_what: str
    pids_before: dict[str, int] = field(default_factory=dict)
    pids_after: dict[str, int] = field(default_factory=dict)
    rss_before: dict[str, int | None] = field(default_factory=dict)
    rss_after: dict[str, int | None] = field(default_factory=dict)
    probes: dict[str, int] = field(default_factory=dict)  # the event's own calls by "group CODE"
    version: int | None = None  # the version a swap event published
    notes: list[str] = field(default_factory=list)

    def note_unexpected(self, details: dict[str, str]) -> None:
        """The first details of each flood outcome other than RESOURCE_EXHAUSTED (those are
        the expected refusals; anything else needs its message to be looked into)."""
        for key, text in sorted(details.items()):
            if not key.endswith("RESOURCE_EXHAUSTED"):
                self.notes.append(f"first {key}: {text[:160]}")

    @property
    def restarted(self) -> list[str]:
        """Roles whose process changed during the event (killed, crashed, restarted)."""
        return sorted(r for r, pid in self.pids_before.items() if self.pids_after.get(r) != pid)


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


class Events:
    """Runs the events against one SoakStack; every result in `results`."""

    def __init__(self, stack: SoakStack, recovery_timeout_s: float = 120.0):
        self.stack = stack
        self.recovery_timeout_s = recovery_timeout_s
        self.results: list[EventResult] = []

    def _snapshot(self) -> ProcessMap:
        processes = self.stack.processes()
        self.stack.remember(processes)
        return processes

    def _run(self, name: str, kind: str, what: str, harm: Callable[[EventResult], float | None]) -> EventResult:
        before = self._snapshot()
        result = EventResult(name, kind, time.monotonic(), 0.0, None, what,
                             pids_before=dict(before.pids), rss_before=before.rss())
        say(f"event {name}: {what.split(':')[0]}")
        try:
            result.recovery_s = harm(result)
        except Exception as exc:  # noqa: BLE001 - an event that breaks is a finding, not a crash
            result.notes.append(f"event failed: {exc!r}"[:300])
        if kind != "flood":
            time.sleep(SETTLE_S)
        after = self._snapshot()
        result.pids_after = dict(after.pids)
        if kind != "flood":  # floods sample their own "after" (RSS_SETTLE_S after the flood)
            result.rss_after = after.rss()
        result.ended = time.monotonic()
        self.results.append(result)
        recovered = "not recovered" if result.recovery_s is None else f"recovered in {result.recovery_s:.1f} s"
        say(f"event {name}: {recovered}")
        return result

    # -- processes

    def worker_kill(self, index: int = 1) -> EventResult:
        def harm(result: EventResult) -> float | None:
            role = f"worker-{index}"
            victim = result.pids_before[role]
            signal_if_alive(victim, signal.SIGKILL)
            t0 = result.started

            def replaced() -> bool:
                pid = self.stack.processes().pids.get(role)
                return pid not in (None, victim) and self.stack.worker_serving(index)

            return time.monotonic() - t0 if wait_until(replaced, self.recovery_timeout_s) else None

        return self._run("worker-kill", "kill", f"SIGKILL inference worker {index}: until a new one serves", harm)

    def worker_stop(self, index: int = 0, seconds: float = 20.0) -> EventResult:
        def harm(result: EventResult) -> float | None:
            victim = result.pids_before[f"worker-{index}"]
            self.stack.stopped_pids.add(victim)
            try:
                signal_if_alive(victim, signal.SIGSTOP)
                time.sleep(seconds)
            finally:
                resume(victim)  # always, whatever happened meanwhile
                self.stack.stopped_pids.discard(victim)
            t0 = time.monotonic()
            if not wait_until(lambda: self.stack.worker_serving(index), self.recovery_timeout_s):
                return None
            return time.monotonic() - t0

        return self._run("worker-stop", "stop",
                         f"SIGSTOP inference worker {index} for {seconds:.0f} s: until it serves after SIGCONT", harm)

    def replica_kill(self, index: int = 0) -> EventResult:
        def harm(result: EventResult) -> float | None:
            role = f"gateway-{index + 1}"
            victim = result.pids_before[role]
            signal_if_alive(victim, signal.SIGKILL)
            admin = self.stack.admin()
            replicas = self.stack.ports.replicas

            def back() -> bool:
                pid = self.stack.processes().pids.get(role)
                try:
                    return pid not in (None, victim) and admin.healthy_gateways() == replicas
                except OSError:
                    return False

            return time.monotonic() - result.started if wait_until(back, self.recovery_timeout_s) else None

        return self._run("replica-kill", "kill",
                         f"SIGKILL gateway replica {index + 1}: until restarted and healthy in Envoy", harm)

    # -- model versions

    def _served_everywhere(self, version: int) -> bool:
        return all(self.stack.worker_version(i) == version for i in range(self.stack.ports.workers))

    def new_version(self) -> EventResult:
        def harm(result: EventResult) -> float | None:
            models = self.stack.models_dir
            staged = model_repository.staging_dir(models)
            shutil.rmtree(staged)
            shutil.copytree(model_repository.version_dir(models, 1), staged)
            version = model_repository.publish(staged, models)
            result.version = version
            ok = wait_until(lambda: self._served_everywhere(version), self.recovery_timeout_s, interval=0.5)
            return time.monotonic() - result.started if ok else None

        return self._run("new-version", "swap", "publish a new version: until every worker answers with it", harm)

    def corrupt_version(self) -> EventResult:
        def harm(result: EventResult) -> float | None:
            models = self.stack.models_dir
            serving = model_repository.latest_version(models)
            staged = model_repository.staging_dir(models)
            (staged / "saved_model.pb").write_bytes(b"this is not a SavedModel")
            model_repository.write_metadata(staged, ModelMetadata(catalog=DEFAULT_CATALOG, architecture="corrupt"))
            version = model_repository.publish(staged, models)
            result.version = version
            workers = range(self.stack.ports.workers)

            def rejected() -> bool:
                log = self.stack.log("inference")
                return all(re.search(rf"event=model_load_failed worker={i} version={version}\b", log)
                           for i in workers) and self._served_everywhere(serving)

            ok = wait_until(rejected, self.recovery_timeout_s, interval=0.5)
            return time.monotonic() - result.started if ok else None

        return self._run("corrupt-version", "swap",
                         "publish a corrupt version: until every worker rejected it and still serves", harm)

    # -- floods

    def _rss_recovery(self, result: EventResult, flood_ended: float) -> float | None:
        """Sample every process until RSS_SETTLE_S after the flood; the RSS at that moment is
        the event's "after". Recovery: the first moment every process was within tolerance."""
        recovered = None
        while True:
            now = time.monotonic()
            processes = self._snapshot()
            rss = processes.rss()
            within = all(rss.get(role) is not None and before is not None
                         and rss[role] <= before * (1 + RSS_TOLERANCE)
                         for role, before in result.rss_before.items())
            if within and recovered is None:
                recovered = now - flood_ended
            elif not within:
                recovered = None
            if now - flood_ended >= RSS_SETTLE_S:
                result.rss_after = rss
                result.notes.append(f"flood took {flood_ended - result.started:.1f} s")
                return recovered
            time.sleep(0.5)

    def message_flood(self, count: int = 16, size: int = floods.FLOOD_MESSAGE_BYTES) -> EventResult:
        def harm(result: EventResult) -> float | None:
            s = self.stack
            targets = {"gateway": (s.gateway_target(0), s.caller_credentials(), s.caller_metadata()),
                       "inference": (s.inference_target(), s.gateway_credentials(), s.gateway_identity())}
            codes, details = floods.message_flood(targets, count=count, size=size)
            result.probes.update(codes)
            result.note_unexpected(details)
            return self._rss_recovery(result, time.monotonic())

        return self._run("message-flood", "flood",
                         f"{count} concurrent {size / 2**20:.1f} MiB requests to gateway-1, then to inference: "
                         "RESOURCE_EXHAUSTED, RSS back", harm)

    def stream_flood(self, held: int = 2_000, bursts: int = 3, burst: int = 1_000) -> EventResult:
        def harm(result: EventResult) -> float | None:
            s = self.stack
            codes, details, lost = floods.stream_flood(
                s.gateway_target(0), s.caller_credentials(), s.caller_metadata(), held=held, bursts=bursts,
                burst=burst)
            recovery = self._rss_recovery(result, time.monotonic())  # meanwhile the access log is written
            if lost:
                resolved = floods.resolve_lost(codes, lost, floods.server_codes(s.log("gateway-1"), lost))
                result.notes.append(
                    f"{len(lost):,} calls read '{floods.CLIENT_CORE_INTERNAL}' in the client (grpc-python, when a "
                    f"server ends a stream still being written); {resolved:,} of them found in gateway-1's "
                    f"access log, counted with the code it logged, {len(lost) - resolved:,} not (LOST)")
            result.probes.update(codes)
            result.note_unexpected(details)
            return recovery

        return self._run("stream-flood", "flood",
                         f"{held:,} streams held open at gateway-1, then {bursts} bursts of {burst:,} new ones: "
                         "RSS back", harm)
