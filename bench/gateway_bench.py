"""Gateway benchmark (part of `make bench`): Recommend through the gateway with `features` and
with `text` (local vectorizer), at concurrency 1 and 32, next to the echo floor measured in the
same run, plus the local vectorizer's cost per message.

The echo floor is a gRPC server that answers Recommend with a canned response and does no
work: the most any Python gRPC service can do on this machine with this load generator. The
gateway is two hops (client -> gateway -> inference), so the goals are ratios to that floor:
features at c32 >= 0.4x, text at c32 >= 0.35x.

    python -m bench.gateway_bench [--duration 5] [--models-dir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.models import ensure_model
from recommender import settings
from recommender.v1 import recommend_pb2
from tests.support import ServerProcess, free_port, free_port_block, wait_for_health

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

GOALS = {"features": 0.40, "text": 0.35}
CONCURRENCIES = (1, 32)
FEATURES = [35, 1, 300_000, 2, 1, 0]
# Varied messages so the local vectorizer does real work (it is not cached: it is cheaper
# than a cache lookup would save).
TEXTS = [
    "저는 30대 여성인데 운동할 때 쓸 거 찾아요. 예산은 30만원이에요",
    "A gift for my dad, he is in his sixties and has back pain, up to 300,000 won",
    "겨울방학에 고등학생 조카 선물로 게임기 50만원 이하",
    "I'm a 24-year-old man looking for something for my trip to Japan, around 1.2 million won",
    "엄마 환갑 선물 요리 좋아하셔서 20만원 정도",
    "college student, need a laptop for coding, max 2 million won",
    "여자친구 생일 선물로 뷰티 관련 40만원 내외",
    "my daughter is in elementary school and loves drawing, 80만원 까지",
]


def _load_generator():
    from bench import loadgen

    return loadgen


DEV_LABELS = (ROOT / "tests" / "data" / "labelled" / "dev_existing.jsonl",
              ROOT / "tests" / "data" / "labelled" / "dev_new.jsonl")


def local_vectorizer_us_per_message(rounds: int = 5) -> dict[str, float]:
    """CPU microseconds per message of the local vectorizer (process time, so a loaded machine
    inflates it less than wall time), best of `rounds`: on the bench texts above and on the dev
    split's labelled messages (short greetings to long rambling ones)."""
    import json

    from gateway.vectorizers.local import LocalVectorizer

    vectorizer = LocalVectorizer()
    sets = {"bench texts": TEXTS * 50}
    dev = [json.loads(line)["text"] for path in DEV_LABELS if path.exists()
           for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if dev:
        sets["dev messages"] = dev
    result = {}
    for name, texts in sets.items():
        for text in texts[:50]:  # warm-up
            vectorizer.vectorize(text)
        best = float("inf")
        for _ in range(rounds):
            started = time.process_time()
            for text in texts:
                vectorizer.vectorize(text)
            best = min(best, (time.process_time() - started) / len(texts) * 1e6)
        result[name] = best
    return result


def run(args: argparse.Namespace | None = None) -> None:
    duration = float(getattr(args, "duration", None) or 5.0)
    models_dir = getattr(args, "models_dir", None)
    workers = int(getattr(args, "workers", None) or settings.default_workers())
    loadgen = _load_generator()
    from bench import echo_server

    work = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    servers: list[ServerProcess] = []
    try:
        models = ensure_model(models_dir, work)
        echo_port, inference_port, gateway_port = free_port(), free_port_block(workers + 1), free_port()
        echo = ServerProcess(echo_server.command(echo_port), work / "echo.log").start()
        servers.append(echo)
        inference = ServerProcess(
            [PYTHON, "-m", "inference", "--models-dir", str(models), "--port", str(inference_port),
             "--workers", str(workers), "--metrics-port", "0", "--log-level", "WARNING"],
            work / "inference.log").start()
        servers.append(inference)
        wait_for_health(f"127.0.0.1:{echo_port}", timeout=60, process=echo.process)
        wait_for_health(f"127.0.0.1:{inference_port}", timeout=180, process=inference.process)
        worker_targets = settings.worker_addresses(inference_port, workers)
        gateway = ServerProcess(
            [PYTHON, "-m", "gateway", "serve", "--port", str(gateway_port), "--inference", worker_targets,
             "--metrics-port", "0", "--log-level", "WARNING"], work / "gateway.log").start()
        servers.append(gateway)
        # The same gateway without request coalescing, measured in the same run: the number
        # that decides whether gateway/coalescing.py earns its place (issue 12).
        plain_port = free_port()
        plain = ServerProcess(
            [PYTHON, "-m", "gateway", "serve", "--port", str(plain_port), "--inference", worker_targets,
             "--metrics-port", "0", "--log-level", "WARNING", "--coalesce-in-flight", "0"],
            work / "gateway-plain.log").start()
        servers.append(plain)
        wait_for_health(f"127.0.0.1:{gateway_port}", timeout=60, process=gateway.process)
        wait_for_health(f"127.0.0.1:{plain_port}", timeout=60, process=plain.process)

        features_request = recommend_pb2.RecommendRequest(features=FEATURES)
        text_requests = [recommend_pb2.RecommendRequest(text=t) for t in TEXTS]
        cases = [
            ("echo floor", f"127.0.0.1:{echo_port}", [features_request]),
            # one hop, for context: the gateway cannot be faster than its backend
            ("inference direct", f"127.0.0.1:{inference_port}", [features_request]),
            ("gateway features", f"127.0.0.1:{gateway_port}", [features_request]),
            ("gateway text", f"127.0.0.1:{gateway_port}", text_requests),
            ("  no coalescing features", f"127.0.0.1:{plain_port}", [features_request]),
            ("  no coalescing text", f"127.0.0.1:{plain_port}", text_requests),
        ]
        results: dict[tuple[str, int], object] = {}
        for concurrency in CONCURRENCIES:
            for name, target, requests in cases:
                if name.startswith("  no coalescing") and concurrency == 1:
                    continue  # a lone caller is never coalesced: same path as above
                results[(name, concurrency)] = loadgen.run_unary(
                    target, "/recommender.v1.RecommendService/Recommend", requests,
                    concurrency=concurrency, duration_s=duration)
        vectorizer_us = local_vectorizer_us_per_message()
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(work, ignore_errors=True)

    print()
    print(f"Gateway Recommend ({workers} inference workers, {duration:.0f} s per case, 127.0.0.1)")
    print(f"{'case':<26} {'conc':>4} {'rps':>9} {'p50 ms':>8} {'p99 ms':>8} {'x echo':>7} {'goal':>6}")
    for concurrency in CONCURRENCIES:
        floor = results[("echo floor", concurrency)].rps
        for name, _, _ in cases:
            r = results.get((name, concurrency))
            if r is None:
                continue
            ratio = r.rps / floor if floor else 0.0
            kind = name.split()[-1]
            goal = GOALS.get(kind) if concurrency == 32 and name.startswith("gateway") else None
            verdict = "" if goal is None else (f">={goal:.2f}" + (" ok" if ratio >= goal else " MISS"))
            print(f"{name:<26} {concurrency:>4} {r.rps:>9.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} "
                  f"{ratio:>6.2f}x {verdict:>6}")
    print("local vectorizer (CPU µs per message, goal <= 200): "
          + ", ".join(f"{us:.0f} on {name}" for name, us in vectorizer_us.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per case")
    parser.add_argument("--models-dir", help="use this model repository instead of training one")
    parser.add_argument("--workers", type=int, help="inference worker processes (default: CPU count)")
    run(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
