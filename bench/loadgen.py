"""A reusable gRPC load generator: N concurrent callers for a fixed time (and at most a fixed
number of calls) against 127.0.0.1, reporting throughput and latency percentiles.

Requests are serialized once up front and responses are not decoded, so the generator
spends its CPU on gRPC itself; every server measured in one run gets the same generator,
which is what makes the ratios meaningful. Load can be spread over several client
processes (`processes`), since one Python process tops out at one core.

    from bench.loadgen import run_unary
    result = run_unary("127.0.0.1:8500", "/recommender.v1.RecommendService/Recommend",
                       [request], concurrency=32, duration_s=5)
    print(result.rps, result.p50_ms, result.p99_ms)
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from dataclasses import dataclass, field

import numpy as np

from recommender.settings import MAX_MESSAGE_BYTES

MAX_CALLS = 2_000_000  # hard bound on calls per run, whatever the duration
ALLOWED_HOSTS = ("127.0.0.1", "localhost", "ipv4:127.0.0.1", "[::1]")


@dataclass
class LoadResult:
    calls: int
    errors: int
    seconds: float
    concurrency: int
    latencies_ms: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    first_error: str = ""

    @property
    def rps(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms.size else float("nan")

    @property
    def p50_ms(self) -> float:
        return self.percentile_ms(50)

    @property
    def p99_ms(self) -> float:
        return self.percentile_ms(99)


def _check_local(target: str) -> None:
    hosts = target.removeprefix("ipv4:").split(",")
    if not all(h.startswith(("127.0.0.1:", "localhost:", "[::1]:")) for h in hosts):
        raise ValueError(f"load generator targets 127.0.0.1 only, got {target!r}")


def _options(target: str) -> list[tuple[str, object]]:
    options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
               ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]
    if "," in target:  # several worker ports: spread requests over one subchannel each
        options.append(("grpc.lb_policy_name", "round_robin"))
    return options


async def _drive(target: str, method: str, payloads: list[bytes], concurrency: int, duration_s: float,
                 max_calls: int, stream: bool, root_certificates: bytes | None = None,
                 metadata: tuple = ()) -> tuple[int, int, float, np.ndarray, str]:
    import grpc

    if root_certificates is None:
        channel = grpc.aio.insecure_channel(target, options=_options(target))
    else:  # TLS (e.g. through the edge): the server's certificate must chain to this CA
        channel = grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(root_certificates),
                                          options=_options(target))
    async with channel:
        await asyncio.wait_for(channel.channel_ready(), 30)
        # No (de)serializers: payloads go out as the bytes prepared above, replies stay bytes.
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        # Warm-up: establish every subchannel and let the server settle.
        for i in range(min(20, 2 * concurrency)):
            await call(payloads[i % len(payloads)], timeout=30, metadata=metadata)
        latencies: list[float] = []
        counters = {"calls": 0, "errors": 0, "first_error": ""}
        started = time.perf_counter()
        deadline = started + duration_s

        async def caller(offset: int):
            i = offset
            while counters["calls"] + counters["errors"] < max_calls:
                t0 = time.perf_counter()
                if t0 >= deadline:
                    return
                try:
                    await call(payloads[i % len(payloads)], timeout=30, metadata=metadata)
                except grpc.aio.AioRpcError as exc:
                    counters["errors"] += 1
                    counters["first_error"] = counters["first_error"] or f"{exc.code().name}: {exc.details()}"
                    continue
                latencies.append(time.perf_counter() - t0)
                counters["calls"] += 1
                i += 1

        await asyncio.gather(*(caller(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - started
    return (counters["calls"], counters["errors"], elapsed, np.array(latencies) * 1000.0,
            counters["first_error"])


def _worker(args) -> tuple:
    return asyncio.run(_drive(*args))


def run_unary(target: str, method: str, requests, concurrency: int = 1, duration_s: float = 5.0,
              max_calls: int = MAX_CALLS, processes: int = 1, root_certificates: bytes | None = None,
              metadata: tuple = ()) -> LoadResult:
    """Call `method` (e.g. "/recommender.v1.RecommendService/Recommend") with the given
    requests (protobuf messages or bytes, cycled) from `concurrency` concurrent callers,
    split over `processes` client processes, for `duration_s` seconds. With
    `root_certificates` (PEM) the channel is TLS checked against that CA; `metadata` goes with
    every call (e.g. an authorization token)."""
    _check_local(target)
    payloads = [r if isinstance(r, bytes) else r.SerializeToString() for r in requests]
    if not payloads:
        raise ValueError("need at least one request")
    processes = max(1, min(processes, concurrency))
    shares = [concurrency // processes + (1 if i < concurrency % processes else 0) for i in range(processes)]
    jobs = [(target, method, payloads, share, duration_s, max_calls // processes, False, root_certificates,
             tuple(metadata)) for share in shares]
    if processes == 1:
        outcomes = [_worker(jobs[0])]
    else:
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            outcomes = pool.map(_worker, jobs)
    return LoadResult(
        calls=sum(o[0] for o in outcomes), errors=sum(o[1] for o in outcomes),
        seconds=max(o[2] for o in outcomes), concurrency=concurrency,
        latencies_ms=np.concatenate([o[3] for o in outcomes]),
        first_error=next((o[4] for o in outcomes if o[4]), ""))


def run_callable(fn, concurrency: int = 1, duration_s: float = 5.0, max_calls: int = MAX_CALLS) -> LoadResult:
    """Time a blocking callable from `concurrency` threads (e.g. a sync stub method bound to
    its request with functools.partial)."""
    import threading

    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    started = time.perf_counter()
    deadline = started + duration_s

    def loop():
        local = []
        while time.perf_counter() < deadline and len(local) < max_calls // concurrency:
            t0 = time.perf_counter()
            try:
                fn()
            except Exception:
                with lock:
                    errors[0] += 1
                continue
            local.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=loop) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return LoadResult(len(latencies), errors[0], time.perf_counter() - started, concurrency,
                      np.array(latencies) * 1000.0)
