"""The soak harness's pure parts (bench/soak): RSS and process parsing from /proc texts, the
arithmetic over call records, budget evaluation, the table. No servers: `make soak` itself
is not part of `make test`."""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import numpy as np
import pytest

from bench.soak import floods, processes, report
from bench.soak.load import (
    CLIENT_ERROR,
    CallRecords,
    WindowStats,
    code_name,
    last_answer_of_older_version,
    text_requests,
    window_stats,
)
from recommender.v1 import recommend_pb2

OK = 0
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE.value[0]
DEADLINE = grpc.StatusCode.DEADLINE_EXCEEDED.value[0]

STATUS = """Name:\tpython
State:\tS (sleeping)
VmPeak:\t 2000000 kB
VmRSS:\t  153600 kB
RssAnon:\t  100000 kB
"""


def test_vmrss_is_read_in_bytes_and_missing_for_a_zombie():
    assert processes.parse_vmrss(STATUS) == 153_600 * 1024
    assert processes.parse_vmrss("Name:\tzombie\nState:\tZ (zombie)\n") is None


def test_rss_of_this_process_is_sampled_and_a_gone_pid_is_none():
    rss = processes.rss_bytes(os.getpid())
    assert rss is not None and 10 * 2**20 < rss < 64 * 2**30
    assert processes.rss_bytes(2**22 + 12345) is None  # above pid_max's default: never a process


def test_parent_pid_from_stat_with_spaces_and_parentheses_in_the_name():
    assert processes.parse_stat_ppid("4242 (python (3) x) S 17 4242 4242 0 -1 4194560 0") == 17


def test_roles_from_command_lines():
    role = processes.role_of
    assert role(["/usr/bin/python", "-m", "gateway", "serve", "--port", "50052"], 50051) == "gateway-2"
    assert role(["/venv/bin/python", "-m", "inference", "--models-dir", "m"], 50051) == "inference"
    assert role(["/venv/bin/python", "-m", "inference", "--worker-index", "1", "--worker-config", "{}"], 0) == "worker-1"
    assert role(["/site-packages/envoy/bin/envoy", "-c", "x.yaml"], 0) == "envoy"
    assert role(["/usr/bin/sleep", "1"], 0) is None
    assert processes.role_order(["envoy", "worker-1", "gateway-2", "inference", "worker-0", "gateway-1"]) == [
        "gateway-1", "gateway-2", "inference", "worker-0", "worker-1", "envoy"]


def test_discovery_walks_a_fake_proc_tree(tmp_path):
    def make(pid: int, ppid: int, args: list[str], rss_kb: int):
        d = tmp_path / str(pid)
        d.mkdir()
        (d / "stat").write_text(f"{pid} (python) S {ppid} 1 1 0")
        (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in args) + b"\0")
        (d / "status").write_text(f"Name:\tx\nVmRSS:\t{rss_kb} kB\n")

    make(100, 1, ["python", "-m", "clients.stack", "cluster"], 50_000)
    make(101, 100, ["python", "-m", "inference", "--port", "8500"], 60_000)
    make(102, 101, ["python", "-m", "inference", "--worker-index", "0"], 700_000)
    make(103, 101, ["python", "-m", "inference", "--worker-index", "1"], 710_000)
    make(104, 100, ["python", "-m", "gateway", "serve", "--port", "9000"], 120_000)
    make(105, 100, ["python", "-m", "gateway", "serve", "--port", "9001"], 121_000)
    make(106, 100, ["/x/envoy", "-c", "e.yaml"], 40_000)
    make(107, 1, ["python", "-m", "gateway", "serve", "--port", "9000"], 1)  # someone else's
    found = processes.ProcessMap.discover(100, 9000, proc=tmp_path)
    assert found.pids == {"inference": 101, "worker-0": 102, "worker-1": 103, "gateway-1": 104,
                          "gateway-2": 105, "envoy": 106}
    assert found.rss(proc=tmp_path)["worker-1"] == 710_000 * 1024


def records(*calls) -> CallRecords:
    """calls: (start, end, code, version)"""
    started, ended, codes, versions = zip(*calls, strict=True)
    return CallRecords(np.array(started, float), np.array(ended, float), np.array(codes, np.int16),
                       np.array(versions, np.int64))


def test_window_counts_calls_started_in_it_failures_by_code_error_span_and_stall():
    r = records((0.5, 0.6, OK, 1), (1.0, 1.1, OK, 1), (1.2, 2.0, UNAVAILABLE, 0), (1.3, 2.5, DEADLINE, 0),
                (1.4, 1.5, UNAVAILABLE, 0), (3.0, 3.1, OK, 1), (9.5, 9.6, OK, 1))
    stats = window_stats(r, 1.0, 4.0)
    assert stats.calls == 5
    assert stats.failed == {"DEADLINE_EXCEEDED": 1, "UNAVAILABLE": 2}
    assert stats.failed_total == 3
    assert stats.error_seconds == pytest.approx(2.5 - 1.2)
    assert stats.longest_stall_s == pytest.approx(3.1 - 1.1)  # between two successful answers
    assert stats.rps == pytest.approx(5 / 3)


def test_window_without_any_answer_is_one_long_stall_and_a_clean_one_has_no_errors():
    r = records((0.0, 0.1, OK, 1), (5.0, 5.1, OK, 1))
    assert window_stats(r, 1.0, 3.0).longest_stall_s == pytest.approx(2.0)
    clean = window_stats(r, 0.0, 6.0)
    assert clean.failed == {} and clean.error_seconds == 0.0


def test_last_answer_of_an_older_version_after_a_publish():
    r = records((1.0, 1.1, OK, 1), (2.0, 2.2, OK, 1), (2.1, 2.3, OK, 2), (2.5, 2.6, UNAVAILABLE, 0))
    assert last_answer_of_older_version(r, 2, after=1.5) == pytest.approx(2.2)
    assert last_answer_of_older_version(r, 1, after=0.0) is None


def test_code_names():
    assert code_name(0) == "OK" and code_name(UNAVAILABLE) == "UNAVAILABLE"
    assert code_name(CLIENT_ERROR) == "CLIENT_ERROR" and code_name(99) == "CODE_99"


def test_text_requests_are_distinct_recommend_requests_with_text():
    payloads = text_requests(500)
    assert len(set(payloads)) == 500
    assert recommend_pb2.RecommendRequest.FromString(payloads[0]).text


def test_the_oversized_batch_is_a_valid_request_of_the_asked_size():
    size = 3 * 2**20 + 7
    message = floods.oversized_batch(size)
    assert size - 3 <= len(message) <= size
    parsed = recommend_pb2.RecommendBatchRequest.FromString(message)
    assert len(parsed.features) == (len(message) - 5) // 4 and not any(parsed.features[:10])


def stats(calls=100, failed=None, error_s=0.0, stall=0.1) -> WindowStats:
    return WindowStats(calls, failed or {}, error_s, stall, 10.0, 5.0, 20.0)


MB = 2**20


@pytest.mark.parametrize("row, misses", [
    (report.Row("worker-kill", "kill", stats(), 3.0), []),
    (report.Row("worker-kill", "kill", stats(failed={"UNAVAILABLE": 2}), 3.0), ["2 failed calls (budget 0)"]),
    (report.Row("new-version", "swap", stats(), None), ["not recovered within the timeout"]),
    (report.Row("worker-stop", "stop", stats(failed={"DEADLINE_EXCEEDED": 3}, error_s=0.9), 1.0), []),
    (report.Row("worker-stop", "stop", stats(failed={"DEADLINE_EXCEEDED": 3}, error_s=10.2), 1.0),
     ["10.2 s of errors (budget 1 s)"]),
    (report.Row("worker-stop", "stop", stats(failed={"INTERNAL": 1}), 1.0), ["load calls ended INTERNAL x1"]),
    (report.Row("soak c64 text", "soak", stats(failed={"UNAVAILABLE": 1}), None), ["1 failed calls (budget 0)"]),
    (report.Row("stream-flood", "flood", stats(failed={"CANCELLED": 3}), 1.0, probes={"held ANSWERED": 1}),
     ["3 failed calls (budget 0)"]),
])
def test_budgets_of_calls(row, misses):
    assert report.budget_misses(row) == misses


def flood(before: dict, after: dict, probes: dict, restarted=(), event="message-flood") -> report.Row:
    return report.Row(event, "flood", stats(), 4.0, before, after, list(restarted), probes)


def test_flood_budget_rss_within_20_percent_of_before():
    before = {"gateway-1": 100 * MB, "worker-0": 700 * MB}
    probes = {"gateway RESOURCE_EXHAUSTED": 16}
    assert report.budget_misses(flood(before, {"gateway-1": 119 * MB, "worker-0": 700 * MB}, probes)) == []
    assert report.budget_misses(flood(before, {"gateway-1": 130 * MB, "worker-0": 700 * MB}, probes)) == [
        "gateway-1 RSS 130 MB > 100 MB +20 %"]
    assert report.budget_misses(flood(before, {"worker-0": 700 * MB}, probes)) == ["gateway-1: no RSS after"]


def test_flood_budget_expected_codes_and_no_restart():
    before = after = {"gateway-1": 100 * MB}
    assert report.budget_misses(flood(before, after, {"gateway RESOURCE_EXHAUSTED": 15, "gateway UNAVAILABLE": 1},
                                      restarted=["gateway-1"])) == [
        "restarted: gateway-1", "flood calls ended gateway UNAVAILABLE x1"]
    streams = {"held ANSWERED": 256, "held RESOURCE_EXHAUSTED": 1744, "burst RESOURCE_EXHAUSTED": 3000}
    assert report.budget_misses(flood(before, after, streams, event="stream-flood")) == []
    assert report.budget_misses(flood(before, after, {"burst INTERNAL": 5}, event="stream-flood")) == [
        "flood calls ended burst INTERNAL x5"]
    assert report.budget_misses(flood(before, after, {})) == ["the flood made no calls"]


def test_table_has_one_row_per_event_rss_per_process_and_the_verdict(tmp_path: Path):
    rows = [
        report.Row("soak c64 text", "soak", stats(calls=12_345), None, {"gateway-1": 100 * MB, "envoy": 30 * MB},
                   {"gateway-1": 104 * MB, "envoy": 31 * MB}, notes=["200 calls/s"]),
        report.Row("replica-kill", "kill", stats(failed={"UNAVAILABLE": 1}), 6.25, {"gateway-1": 104 * MB},
                   {"gateway-1": 90 * MB}, ["gateway-1"]),
    ]
    assert report.evaluate(rows) is False
    table = report.render_markdown(rows)
    lines = table.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("| event | calls | failed by code | errors s | stall s | recovery s | gateway-1 MB |")
    assert "envoy MB" in lines[0]
    assert "| soak c64 text | 12,345 | 0 |" in lines[2] and "| 100→104 |" in lines[2] and lines[2].endswith("| ok |")
    assert "| UNAVAILABLE 1 |" in lines[3] and "| 6.2 |" in lines[3] and "104→90*" in lines[3]
    assert "MISS: 1 failed calls (budget 0)" in lines[3] and "| -→- |" in lines[3]  # no envoy sample there
    md, js = report.write_results(tmp_path, "20260101T000000Z", table, rows, {"commit": "abc"})
    assert md.read_text().strip() == table
    import json
    data = json.loads(js.read_text())
    assert data["passed"] is False and data["rows"][1]["misses"] == ["1 failed calls (budget 0)"]


def test_lost_stream_statuses_are_taken_from_the_servers_access_log():
    from collections import Counter

    log = "\n".join([
        "ts=1 level=INFO logger=recommender.access event=rpc method=RecommendService/RecommendStream "
        "code=RESOURCE_EXHAUSTED ms=0.33 caller=dev request_id=soak-ab-burst0-1",
        "ts=1 level=INFO logger=recommender.access event=rpc method=RecommendService/RecommendStream "
        "code=CANCELLED ms=9 caller=dev request_id=soak-ab-held-7",
        "ts=1 level=INFO logger=recommender.access event=rpc method=RecommendService/Recommend "
        "code=OK ms=1 caller=dev request_id=other",
    ])
    lost = {"soak-ab-burst0-1": "burst0", "soak-ab-held-7": "held", "soak-ab-burst1-3": "burst1"}
    server = floods.server_codes(log, lost)
    assert server == {"soak-ab-burst0-1": "RESOURCE_EXHAUSTED", "soak-ab-held-7": "CANCELLED"}
    codes = Counter({"burst INTERNAL": 2, "burst RESOURCE_EXHAUSTED": 5, "held INTERNAL": 1})
    assert floods.resolve_lost(codes, lost, server) == 2
    # the one the server has no line for never reached its code: LOST, not INTERNAL
    assert codes == {"burst LOST": 1, "burst RESOURCE_EXHAUSTED": 6, "held CANCELLED": 1}
    row = report.Row("stream-flood", "flood", stats(), 1.0, {}, {}, [], dict(codes) | {"burst INTERNAL": 1})
    assert report.budget_misses(row) == ["flood calls ended burst INTERNAL x1"]


def test_command_line_defaults_and_event_subset():
    from bench.soak.__main__ import EVENTS, parse_args

    args = parse_args([])
    assert (args.soak_seconds, args.soak_concurrency, args.event_concurrency, args.stop_seconds) == (60, 64, 16, 20)
    assert (args.call_timeout, args.train_rows, args.max_minutes, args.keep) == (10, 10_000, 12, False)
    assert args.events == list(EVENTS) and args.results_dir.name == "results"
    args = parse_args(["--events", "worker-stop, stream-flood", "--models-dir", "m", "--keep",
                       "--results-dir", "r", "--soak-seconds", "5", "--call-timeout", "3"])
    assert args.events == ["worker-stop", "stream-flood"] and str(args.models_dir) == "m" and args.keep
    assert str(args.results_dir) == "r" and args.soak_seconds == 5 and args.call_timeout == 3
    with pytest.raises(SystemExit):
        parse_args(["--events", "worker-kill,reboot"])


def test_ports_of_the_stack_and_a_bound_port_is_not_free():
    import socket

    from bench.soak.stack import Ports, port_is_free

    ports = Ports(inference=20000, gateway=20010, public=20020, admin=20021, metrics=20022, gateway_metrics=20030)
    assert ports.all() == [20000, 20001, 20002, 20010, 20011, 20020, 20021]
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert not port_is_free(port)
    assert port_is_free(port)
