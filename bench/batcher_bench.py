"""The dynamic batcher's modes side by side (not part of `make bench`; a few minutes).

Single-vector Recommend at concurrency 1 and 32 against one inference server per batching
mode, all running at once, next to the bare gRPC echo server: the modes alternate within each
round and every figure is the median over the rounds, so the machine's drifting load hits
them alike. Per mode: c1 p50 (ms and / echo), the share of c1 calls slower than the 1 ms
window server-side (they waited for company), c32 req/s (and / echo) and p50, and the batcher
fill during the c32 runs (rows per model call), from the server's metrics before and after.

Modes: `adaptive` (default flags), `always-open` (--no-batch-adaptive), `off`
(--batch-timeout-ms 0); `--compare-tree DIR` adds the same server run from another checkout
(e.g. `git archive <commit> | tar -x -C DIR`) as `adaptive@DIR` (repeatable).

    python -m bench.batcher_bench [--models-dir DIR] [--rounds 3] [--duration 2.5] [--workers 2] [--cases c1,c32]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from bench import echo_server, loadgen
from bench.inference_bench import RECOMMEND, batcher_totals
from bench.models import ensure_model
from edge.runner import die_with_parent
from recommender import settings
from recommender.v1 import recommend_pb2
from tests.support import PYTHON, ServerProcess, free_port, free_port_block, wait_for_health

MODES = {"adaptive": [], "always-open": ["--no-batch-adaptive"], "off": ["--batch-timeout-ms", "0"]}


def run(args: argparse.Namespace) -> dict:
    workers = args.workers or settings.default_workers()
    work = Path(tempfile.mkdtemp(prefix="batcher-bench-"))
    models = ensure_model(args.models_dir, work)
    modes = {name: (None, flags) for name, flags in MODES.items()}
    for tree in args.compare_tree or ():
        modes[f"adaptive@{Path(tree).name}"] = (tree, [])
    servers, targets, metrics_ports = [], {}, {}
    single = [recommend_pb2.RecommendRequest(features=[35, 1, 300_000, 2, 1, 0])]
    results: dict[tuple[str, str], list] = {}
    try:
        port = free_port_block(workers + 1)
        echo = ServerProcess(echo_server.command(port, workers), work / "echo.log").start()
        servers.append(echo)
        targets["echo"] = port
        for name, (tree, flags) in modes.items():
            port, metrics_port = free_port_block(workers + 1), free_port()
            command = [PYTHON, "-m", "inference", "--models-dir", str(models), "--port", str(port), "--workers",
                       str(workers), "--metrics-port", str(metrics_port), "--log-level", "WARNING", *flags]
            log_path = work / f"{name.replace('/', '_')}.log"
            servers.append((TreeServer(command, log_path, tree) if tree else ServerProcess(command, log_path)).start())
            targets[name], metrics_ports[name] = port, metrics_port
        for name, port in targets.items():
            for i in range(workers):
                wait_for_health(f"127.0.0.1:{settings.worker_port(port, i)}", timeout=180,
                                process=servers[list(targets).index(name)].process)
        addresses = {name: "ipv4:" + settings.worker_addresses(port, workers) for name, port in targets.items()}
        for round_index in range(args.rounds):
            order = list(addresses) if round_index % 2 == 0 else list(reversed(addresses))
            for case, concurrency, processes in (("c1", 1, 1), ("c32", 32, args.client_processes)):
                if case not in args.cases.split(","):
                    continue
                for name in order:
                    port = metrics_ports.get(name)
                    before = (batcher_totals(port), slow_recommends(port)) if port else None
                    result = loadgen.run_unary(addresses[name], RECOMMEND, single, concurrency, args.duration,
                                               processes=processes)
                    fill = slow = None
                    if before is not None:
                        after = batcher_totals(port)
                        calls = after[1] - before[0][1]
                        fill = (after[0] - before[0][0]) / calls if calls else None
                        slow_after = slow_recommends(port)  # warm-up calls included
                        slow = (slow_after[0] - before[1][0]) / max(1.0, slow_after[1] - before[1][1])
                    results.setdefault((name, case), []).append((result, fill, slow))
                    if result.errors:
                        print(f"  {name} {case}: {result.errors} errors, first {result.first_error}")
            print(f"  round {round_index + 1}/{args.rounds} done", flush=True)
    finally:
        for server in reversed(servers):
            server.stop()
    return report(results, list(addresses), workers, args)


def slow_recommends(metrics_port: int, seconds: float = 0.001) -> tuple[float, float]:
    """(Recommend calls so far whose server-side latency, batch wait included, exceeded
    `seconds`, all Recommend calls so far). `seconds` is a histogram bucket bound; with the
    default 1 ms window, a row that waited for company is among the slow ones."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    total = within = 0.0
    for line in text.splitlines():
        if line.startswith("inference_request_latency_seconds_bucket{") and 'method="Recommend"' in line:
            value = float(line.rsplit(" ", 1)[1])
            if 'le="+Inf"' in line:
                total += value
            elif f'le="{seconds:g}"' in line:
                within += value
    return total - within, total


class TreeServer(ServerProcess):
    """A server started from another checkout: `python -m` finds that tree's packages first."""

    def __init__(self, args: list[str], log_path: Path, tree: str):
        super().__init__(args, log_path)
        self.tree = tree

    def start(self) -> TreeServer:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed by stop()
        self.process = subprocess.Popen(self.args, cwd=self.tree, env=self.env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True,
                                        preexec_fn=die_with_parent)
        return self


def report(results: dict, names: list[str], workers: int, args) -> dict:
    def median(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else float("nan")

    rounds = args.rounds
    echo_c1 = [r.p50_ms for r, _, _ in results.get(("echo", "c1"), [])]
    echo_c32 = [r.rps for r, _, _ in results.get(("echo", "c32"), [])]
    table = {}
    print()
    print(f"Dynamic batcher modes: {workers} workers, medians of {rounds} alternating {args.duration:g} s rounds; "
          f"c32 from {args.client_processes} client processes; ratios to the echo server in the same round")
    print(f"{'mode':<24} {'c1 p50 ms':>10} {'/ echo':>7} {'c1 >1ms':>8} {'c32 req/s':>10} {'/ echo':>7} "
          f"{'c32 p50 ms':>10} {'rows/call c32':>13}")
    for name in names:
        c1, c32 = results.get((name, "c1"), []), results.get((name, "c32"), [])
        row = {
            "c1_p50_ms": median([r.p50_ms for r, _, _ in c1]),
            "c1_p50_vs_echo": median([r.p50_ms / e for (r, _, _), e in zip(c1, echo_c1, strict=True)]),
            "c1_slow_share": median([s for _, _, s in c1]),
            "c32_rps": median([r.rps for r, _, _ in c32]),
            "c32_vs_echo": median([r.rps / e for (r, _, _), e in zip(c32, echo_c32, strict=True)]),
            "c32_p50_ms": median([r.p50_ms for r, _, _ in c32]),
            "c32_rows_per_call": median([f for _, f, _ in c32]),
        }
        table[name] = row
        print(f"{name:<24} {row['c1_p50_ms']:>10.3f} {row['c1_p50_vs_echo']:>6.2f}x {row['c1_slow_share']:>7.1%} "
              f"{row['c32_rps']:>10,.0f} {row['c32_vs_echo']:>6.2f}x {row['c32_p50_ms']:>10.3f} "
              f"{row['c32_rows_per_call']:>13.1f}")
    print("c1 >1ms: share of the c1 calls whose server-side latency exceeded the 1 ms window (they waited); "
          "rows/call: dynamic batcher rows per model call during the c32 runs")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.batcher_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", help="model repository to serve (default: train one into a temp dir)")
    parser.add_argument("--duration", type=float, default=2.5, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (medians reported)")
    parser.add_argument("--workers", type=int, help="worker processes per server (default: CPU count)")
    parser.add_argument("--client-processes", type=int, default=2, help="load generator processes at c32")
    parser.add_argument("--cases", default="c1,c32", help="which of c1,c32 to run")
    parser.add_argument("--compare-tree", action="append",
                        help="also run `python -m inference` (default flags) from this checkout; repeatable")
    run(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
