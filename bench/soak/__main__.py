"""`make soak`: a fresh cluster (Envoy with TLS, 2 gateway replicas, inference with 2 workers,
tokens on; `python -m clients.stack cluster` on free 127.0.0.1 ports in a temporary folder),
a 60 s load at concurrency 64 with text through Envoy, then, under a c16 load, one after the
other: a worker SIGKILL, a worker SIGSTOP for 20 s, a gateway replica SIGKILL, a new model
version, a corrupt version, a 64 MiB message flood and a stream flood. Prints one table and
writes it (markdown + JSON) to bench/results/soak-<UTC time>.{md,json}; exits 1 when a
budget is missed (bench/soak/report.py lists them), 2 when the soak itself could not run.

    python -m bench.soak [--soak-seconds 60] [--soak-concurrency 64] [--event-concurrency 16]
                         [--models-dir models] [--events worker-kill,stream-flood] [--keep]

Everything it starts listens on 127.0.0.1 and is stopped on the way out (also on Ctrl-C,
SIGTERM or the --max-minutes watchdog); a worker it SIGSTOPped always gets SIGCONT.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.soak import report
from bench.soak.events import EventResult, Events
from bench.soak.load import Load, LoadSpec, last_answer_of_older_version, text_requests, window_stats
from bench.soak.stack import ROOT, SoakStack, prepare_model, say
from recommender import model_repository

EVENTS = ("worker-kill", "worker-stop", "replica-kill", "new-version", "corrupt-version",
          "message-flood", "stream-flood")
BASELINE_S = 5.0  # c16 load alone before the first event


class Watchdog(Exception):
    pass


def _on_alarm(signum, frame):
    raise Watchdog("the soak ran past --max-minutes")


def _on_term(signum, frame):
    raise KeyboardInterrupt


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--soak-seconds", type=float, default=60.0, help="phase 1 length (default 60)")
    parser.add_argument("--soak-concurrency", type=int, default=64, help="phase 1 callers (default 64)")
    parser.add_argument("--event-concurrency", type=int, default=16, help="phase 2 callers (default 16)")
    parser.add_argument("--stop-seconds", type=float, default=20.0, help="how long a worker stays SIGSTOPped")
    parser.add_argument("--call-timeout", type=float, default=10.0, help="the load's deadline per call (s)")
    parser.add_argument("--models-dir", type=Path, default=Path(os.environ.get("MODELS_DIR") or "models"),
                        help="copy this repository's newest version; train a small model when it has none")
    parser.add_argument("--train-rows", type=int, default=10_000, help="rows of the small model (default 10,000)")
    parser.add_argument("--events", default=",".join(EVENTS),
                        help=f"comma-separated subset of {','.join(EVENTS)} (in this order)")
    parser.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--max-minutes", type=float, default=12.0, help="watchdog: stop everything after this")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, models)")
    args = parser.parse_args(argv)
    args.events = [e.strip() for e in args.events.split(",") if e.strip()]
    unknown = [e for e in args.events if e not in EVENTS]
    if unknown:
        parser.error(f"unknown event(s) {', '.join(unknown)}; choose from {', '.join(EVENTS)}")
    return args


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def run_phase1(stack: SoakStack, args, requests) -> report.Row:
    say(f"phase 1: {args.soak_seconds:.0f} s at concurrency {args.soak_concurrency}, Recommend with text "
        f"through Envoy (TLS, token)")
    load = Load(LoadSpec(stack.edge_target(), stack.ca(), stack.caller_metadata(), requests,
                         args.soak_concurrency, args.call_timeout)).start()
    before = stack.processes()
    rss_before = before.rss()
    t0 = time.monotonic()
    try:
        time.sleep(args.soak_seconds)
        t1 = time.monotonic()
        after = stack.processes()
        rss_after = after.rss()
    finally:
        records = load.stop()
    stats = window_stats(records, t0, t1)
    restarted = sorted(r for r, pid in before.pids.items() if after.pids.get(r) != pid)
    return report.Row(f"soak c{args.soak_concurrency} text", "soak", stats, None, rss_before, rss_after, restarted,
                      notes=[f"{stats.rps:.0f} calls/s, p50 {stats.p50_ms:.0f} ms, p99 {stats.p99_ms:.0f} ms"])


def run_phase2(stack: SoakStack, args, requests) -> list[report.Row]:
    say(f"phase 2: events under a c{args.event_concurrency} load: {', '.join(args.events)}")
    load = Load(LoadSpec(stack.edge_target(), stack.ca(), stack.caller_metadata(), requests,
                         args.event_concurrency, args.call_timeout)).start()
    events = Events(stack)
    baseline = None
    try:
        before = stack.processes()
        t0 = time.monotonic()
        rss_before = before.rss()
        time.sleep(BASELINE_S)
        after = stack.processes()
        baseline = EventResult(f"c{args.event_concurrency} load alone", "soak", t0, time.monotonic(), None, "",
                               dict(before.pids), dict(after.pids), rss_before, after.rss())
        for name in args.events:
            run = {"worker-kill": events.worker_kill, "worker-stop": lambda: events.worker_stop(
                       seconds=args.stop_seconds),
                   "replica-kill": events.replica_kill, "new-version": events.new_version,
                   "corrupt-version": events.corrupt_version, "message-flood": events.message_flood,
                   "stream-flood": events.stream_flood}[name]
            run()
    finally:
        records = load.stop()
    rows = []
    for result in [baseline, *events.results]:
        stats = window_stats(records, result.started, result.ended)
        notes = list(result.notes)
        notes.insert(0, f"{stats.rps:.0f} calls/s, p50 {stats.p50_ms:.0f} ms, p99 {stats.p99_ms:.0f} ms")
        if result.version is not None:
            notes.insert(0, f"version {result.version}")
            if result.name == "new-version":
                last_old = last_answer_of_older_version(records, result.version, result.started)
                if last_old is not None:
                    notes.append(f"load answered by the old version until +{last_old - result.started:.1f} s")
        if stats.failed:
            notes.extend(f"first {code}: {records.first_errors.get(code, '')[:120]}" for code in stats.failed)
        rows.append(report.Row(result.name, result.kind, stats,
                               None if result.kind == "soak" else result.recovery_s,
                               result.rss_before, result.rss_after, result.restarted, dict(result.probes), notes))
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGTERM, _on_term)
    signal.alarm(int(args.max_minutes * 60))
    run = {"started_utc": stamp, "commit": _git_commit(), "cpus": os.cpu_count(),
           "load_average_at_start": round(os.getloadavg()[0], 1), "soak_seconds": args.soak_seconds,
           "soak_concurrency": args.soak_concurrency, "event_concurrency": args.event_concurrency,
           "call_timeout_s": args.call_timeout, "events": args.events}
    stack = SoakStack.create(keep=args.keep)
    rows: list[report.Row] = []
    try:
        source = args.models_dir if model_repository.latest_version(args.models_dir) is not None else None
        say(f"model: {'copying ' + str(args.models_dir) if source else 'training a small one'} "
            f"into {stack.models_dir}")
        run["model"] = prepare_model(stack.models_dir, stack.work, source, args.train_rows)
        say(f"starting the cluster (make cluster's code path) in {stack.work}: Envoy :{stack.ports.public}, "
            f"gateways :{stack.ports.gateway}+, inference :{stack.ports.inference}+")
        run["cluster_ready_s"] = round(stack.start(), 1)
        say(f"cluster ready in {run['cluster_ready_s']} s; processes {stack.processes().pids}")
        requests = text_requests()
        rows.append(run_phase1(stack, args, requests))
        rows.extend(run_phase2(stack, args, requests))
    except (Watchdog, KeyboardInterrupt, RuntimeError, TimeoutError, OSError, subprocess.CalledProcessError) as exc:
        say(f"soak aborted: {exc!r}" + (f" (stack log: {stack.stack_log})" if args.keep else ""))
        if not rows:
            return 2
        run["aborted"] = repr(exc)
    finally:
        signal.alarm(0)
        say("stopping the cluster")
        run["left_behind"] = stack.stop()
        stack.cleanup()
    run["seconds"] = round(time.monotonic() - started, 1)
    run["load_average_at_end"] = round(os.getloadavg()[0], 1)
    passed = report.evaluate(rows) and "aborted" not in run and not run["left_behind"]
    table = report.render_markdown(rows)
    heading = (f"## make soak {stamp} (commit {run['commit']}, {run['seconds']:.0f} s, load average "
               f"{run['load_average_at_start']} → {run['load_average_at_end']} on {run['cpus']} CPUs)")
    verdict = "all budgets met" if passed else "BUDGET MISSED: " + "; ".join(
        f"{row.event}: {', '.join(row.misses)}" for row in rows if row.misses) + (
        f"; aborted: {run['aborted']}" if "aborted" in run else "") + (
        f"; left behind after stopping: {'; '.join(run['left_behind'])}" if run["left_behind"] else "")
    if passed:
        verdict += "; stopping left nothing behind (processes, ports, Envoy's folder)"
    markdown = f"{heading}\n\n{table}\n\n{verdict}"
    print(markdown, flush=True)
    md_path, json_path = report.write_results(args.results_dir, stamp, markdown, rows, run)
    say(f"written {md_path} and {json_path}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
