"""The soak's load: `Recommend` with customer text through the edge (TLS, caller token) from
N concurrent callers in a separate process, recording every call (start, end, status code,
model version), so that each event can be judged afterwards on exactly the calls made while
it happened. And the pure arithmetic over those records (calls, failures by code, seconds of
errors, the longest stretch without a successful answer).

Start and end times are `time.monotonic()`, which on Linux is one clock for every process,
so the events (timed in the main process) and the calls (timed here) line up.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections import Counter
from dataclasses import dataclass, field

import grpc
import numpy as np

from bench.loadgen import _check_local

METHOD = "/recommender.v1.RecommendService/Recommend"
CLIENT_ERROR = -1  # an exception that is not a gRPC status (a bug in the load itself)
WARMUP_TIMEOUT_S = 60.0

# Customers as they write (Korean and English); with the budgets below, 2,000 distinct texts
# cycle through the gateway's text cache (4,096 entries) often enough to hit and miss it.
TEXTS = (
    "중학생 아들 게임기 사주려고요, {b}만원 정도",
    "저는 30대 여성인데 운동할 때 쓸 거 찾아요. 예산은 {b}만원 이하",
    "엄마 생신 선물, 요리를 좋아하셔요, {b}만원 정도",
    "아버지가 허리가 아프셔서 선물하려고요 {b}만원까지",
    "겨울에 조카 선물로 게임기 {b}만원",
    "대학생 딸 노트북 필요해요 예산 {b}만원",
    "A gift for my dad, he is in his sixties and has back pain, up to {b}0,000 won",
    "I need a laptop for coding, around {b}0,000 won",
    "she loves cooking and baking, around {b}0,000 won",
    "I am a 28-year-old man who runs marathons, budget {b}0,000 won",
)


def text_requests(count: int = 2_000) -> list[bytes]:
    """`count` serialized RecommendRequests with text, all different."""
    from recommender.v1 import recommend_pb2

    budgets = range(5, 5 + -(-count // len(TEXTS)))
    texts = [t.format(b=b) for b in budgets for t in TEXTS][:count]
    return [recommend_pb2.RecommendRequest(text=t).SerializeToString() for t in texts]


def code_name(value: int) -> str:
    if value == CLIENT_ERROR:
        return "CLIENT_ERROR"
    for code in grpc.StatusCode:
        if code.value[0] == value:
            return code.name
    return f"CODE_{value}"


@dataclass
class CallRecords:
    """One entry per finished call, in completion order."""

    started: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ended: np.ndarray = field(default_factory=lambda: np.zeros(0))
    codes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int16))
    versions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    first_errors: dict[str, str] = field(default_factory=dict)  # code name -> first details

    def __len__(self) -> int:
        return int(self.started.size)

    def started_in(self, start: float, end: float) -> CallRecords:
        keep = (self.started >= start) & (self.started < end)
        return CallRecords(self.started[keep], self.ended[keep], self.codes[keep], self.versions[keep],
                           self.first_errors)


@dataclass
class WindowStats:
    calls: int
    failed: dict[str, int]  # code name -> count
    error_seconds: float  # from the first failed call's start to the last one's end; 0 without
    longest_stall_s: float  # longest stretch in the window without a successful answer
    rps: float
    p50_ms: float
    p99_ms: float

    @property
    def failed_total(self) -> int:
        return sum(self.failed.values())


def window_stats(records: CallRecords, start: float, end: float) -> WindowStats:
    """The calls that started in [start, end): how many, which failed with what, how long
    errors lasted and how long no call succeeded."""
    calls = records.started_in(start, end)
    ok = calls.codes == 0
    failed = Counter(code_name(int(c)) for c in calls.codes[~ok])
    error_seconds = 0.0
    if (~ok).any():
        error_seconds = float(calls.ended[~ok].max() - calls.started[~ok].min())
    successes = np.sort(calls.ended[ok])
    edges = np.concatenate(([start], successes[(successes >= start) & (successes <= end)], [end]))
    longest_stall = float(np.diff(edges).max()) if edges.size > 1 else end - start
    latencies = (calls.ended[ok] - calls.started[ok]) * 1000.0
    return WindowStats(
        calls=len(calls), failed=dict(sorted(failed.items())), error_seconds=error_seconds,
        longest_stall_s=longest_stall, rps=len(calls) / (end - start) if end > start else 0.0,
        p50_ms=float(np.percentile(latencies, 50)) if latencies.size else float("nan"),
        p99_ms=float(np.percentile(latencies, 99)) if latencies.size else float("nan"))


def last_answer_of_older_version(records: CallRecords, version: int, after: float) -> float | None:
    """End time of the last successful call, started after `after`, answered by a version
    older than `version` (None: none was)."""
    calls = records.started_in(after, float("inf"))
    older = (calls.codes == 0) & (calls.versions < version)
    return float(calls.ended[older].max()) if older.any() else None


# ----------------------------------------------------------------------------- the load process


@dataclass
class LoadSpec:
    target: str  # the edge, e.g. localhost:8443
    root_certificates: bytes
    metadata: tuple[tuple[str, str], ...]
    payloads: list[bytes]
    concurrency: int
    call_timeout_s: float = 10.0
    max_seconds: float = 600.0  # hard bound, whatever happens to the stop signal
    channels: int = 2  # separate connections to the edge (Envoy spreads them over its threads)


async def _drive(spec: LoadSpec, stop, conn) -> None:
    from recommender.v1 import recommend_pb2

    credentials = grpc.ssl_channel_credentials(spec.root_certificates)
    channels = [grpc.aio.secure_channel(spec.target, credentials, options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(spec.channels)]
    calls = [c.unary_unary(METHOD, request_serializer=None, response_deserializer=None) for c in channels]
    started: list[float] = []
    ended: list[float] = []
    codes: list[int] = []
    versions: list[int] = []
    first_errors: dict[str, str] = {}
    try:
        for channel in channels:
            await asyncio.wait_for(channel.channel_ready(), WARMUP_TIMEOUT_S)
        for i in range(2 * spec.channels):  # warm-up: every connection, the TLS sessions
            await calls[i % len(calls)](spec.payloads[i], timeout=WARMUP_TIMEOUT_S, metadata=spec.metadata)
        conn.send(("ready", None))
        hard_end = time.monotonic() + spec.max_seconds
        stopping = asyncio.Event()

        async def watch_stop():
            while not stop.is_set() and time.monotonic() < hard_end:
                await asyncio.sleep(0.05)
            stopping.set()

        async def caller(k: int):
            call = calls[k % len(calls)]
            i = k
            while not stopping.is_set():
                t0 = time.monotonic()
                version = 0
                try:
                    reply = await call(spec.payloads[i % len(spec.payloads)], timeout=spec.call_timeout_s,
                                       metadata=spec.metadata)
                    code = 0
                    version = recommend_pb2.RecommendResponse.FromString(reply).model_version
                except grpc.aio.AioRpcError as exc:
                    code = exc.code().value[0]
                    first_errors.setdefault(exc.code().name, (exc.details() or "")[:300])
                except Exception as exc:  # noqa: BLE001 - counted, never lost
                    code = CLIENT_ERROR
                    first_errors.setdefault("CLIENT_ERROR", repr(exc)[:300])
                started.append(t0)
                ended.append(time.monotonic())
                codes.append(code)
                versions.append(version)
                i += spec.concurrency

        await asyncio.gather(watch_stop(), *(caller(k) for k in range(spec.concurrency)))
    finally:
        for channel in channels:
            await channel.close()
    conn.send(("records", CallRecords(np.array(started), np.array(ended), np.array(codes, dtype=np.int16),
                                      np.array(versions, dtype=np.int64), first_errors)))


def _main(spec: LoadSpec, stop, conn) -> None:
    try:
        asyncio.run(_drive(spec, stop, conn))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which decides
        conn.send(("error", repr(exc)))
    finally:
        conn.close()


class Load:
    """The load in its own process (one Python process is at most one core; the soak's own
    work, e.g. building 64 MiB messages, must not slow the callers)."""

    def __init__(self, spec: LoadSpec):
        _check_local(spec.target)
        self.spec = spec
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._conn, child_conn = context.Pipe(duplex=False)
        self._process = context.Process(target=_main, args=(spec, self._stop, child_conn), daemon=True)
        self._child_conn = child_conn
        self.started_at = 0.0

    def start(self, timeout: float = 120.0) -> Load:
        self._process.start()
        self._child_conn.close()
        if not self._conn.poll(timeout):
            self._process.kill()
            raise TimeoutError(f"the load did not warm up within {timeout:.0f} s")
        try:
            kind, detail = self._conn.recv()
        except EOFError:
            kind, detail = "error", f"the load process exited with code {self._process.exitcode}"
        if kind != "ready":
            raise RuntimeError(f"the load could not start: {detail}")
        self.started_at = time.monotonic()
        return self

    def stop(self, timeout: float = 60.0) -> CallRecords:
        self._stop.set()
        try:
            if not self._conn.poll(self.spec.call_timeout_s + timeout):
                raise TimeoutError("the load did not stop")
            try:
                kind, detail = self._conn.recv()
            except EOFError:
                kind, detail = "error", f"the load process exited with code {self._process.exitcode}"
            if kind != "records":
                raise RuntimeError(f"the load failed: {detail}")
            return detail
        finally:
            self._process.join(10)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()

    def alive(self) -> bool:
        return self._process.is_alive()
