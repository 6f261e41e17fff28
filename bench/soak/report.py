"""The soak's verdict: one row per phase/event, the budgets each row must meet, the table
(markdown, printed and written with a JSON copy to the results folder).

Budgets (issue 15):
  - every row: no call of the load ends INTERNAL or UNKNOWN (or fails inside the client), and
    the stack is whole again within the recovery timeout;
  - soak, kills, version swaps: 0 failed calls; floods too (a flood at one gateway must not
    fail other callers' calls through Envoy);
  - worker-stop: at most 1 s of errors (first failed call's start to last one's end);
  - floods: every process's RSS within 20 % of its RSS before the flood, 10 s after it; no
    process restarted; the flood's own calls end only as expected (message flood:
    RESOURCE_EXHAUSTED; stream flood: answered, or refused as RESOURCE_EXHAUSTED, UNAVAILABLE,
    CANCELLED, or LOST: grpc ended it before the gateway's code saw it, so no access-log line).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.soak.load import WindowStats
from bench.soak.processes import role_order

ZERO_FAILURE_KINDS = ("soak", "kill", "swap", "flood")
MAX_STOP_ERROR_S = 1.0
RSS_TOLERANCE = 0.20
NEVER = ("INTERNAL", "UNKNOWN", "CLIENT_ERROR")
EXPECTED_PROBE_CODES = {
    "message-flood": {"RESOURCE_EXHAUSTED"},
    # refusals of the flood's own streams; never INTERNAL/UNKNOWN (LOST: see bench/soak/floods.py)
    "stream-flood": {"ANSWERED", "OK", "RESOURCE_EXHAUSTED", "UNAVAILABLE", "CANCELLED", "LOST"},
}


@dataclass
class Row:
    event: str
    kind: str
    stats: WindowStats
    recovery_s: float | None  # None: did not recover (for kind "soak": not applicable)
    rss_before: dict[str, int | None] = field(default_factory=dict)
    rss_after: dict[str, int | None] = field(default_factory=dict)
    restarted: list[str] = field(default_factory=list)
    probes: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.misses


def budget_misses(row: Row) -> list[str]:
    """What this row misses of its budgets (empty: all met)."""
    misses = []
    s = row.stats
    never = {code: n for code, n in s.failed.items() if code in NEVER}
    if never:
        misses.append("load calls ended " + ", ".join(f"{c} x{n}" for c, n in never.items()))
    if row.kind != "soak" and row.recovery_s is None:
        misses.append("not recovered within the timeout")
    if row.kind in ZERO_FAILURE_KINDS and s.failed_total:
        misses.append(f"{s.failed_total} failed calls (budget 0)")
    if row.kind == "stop" and s.error_seconds > MAX_STOP_ERROR_S:
        misses.append(f"{s.error_seconds:.1f} s of errors (budget {MAX_STOP_ERROR_S:g} s)")
    if row.kind == "flood":
        for role in role_order(row.rss_before):
            before, after = row.rss_before.get(role), row.rss_after.get(role)
            if before is None or after is None:
                misses.append(f"{role}: no RSS {'before' if before is None else 'after'}")
            elif after > before * (1 + RSS_TOLERANCE):
                misses.append(f"{role} RSS {after / 2**20:.0f} MB > {before / 2**20:.0f} MB +20 %")
        if row.restarted:
            misses.append("restarted: " + ", ".join(row.restarted))
        expected = EXPECTED_PROBE_CODES.get(row.event)
        if expected is not None:
            unexpected = {k: n for k, n in row.probes.items() if k.rsplit(" ", 1)[-1] not in expected}
            if unexpected:
                misses.append("flood calls ended " + ", ".join(f"{k} x{n}" for k, n in sorted(unexpected.items())))
            if not row.probes:
                misses.append("the flood made no calls")
    return misses


def evaluate(rows: list[Row]) -> bool:
    for row in rows:
        row.misses = budget_misses(row)
    return all(row.ok for row in rows)


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:.0f}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "never"
    return "-" if math.isnan(value) else f"{value:.1f}"


def _codes(counts: dict[str, int]) -> str:
    return ", ".join(f"{code} {n:,}" for code, n in sorted(counts.items())) or "0"


def roles_of(rows: list[Row]) -> list[str]:
    return role_order({r for row in rows for r in (*row.rss_before, *row.rss_after)})


def render_markdown(rows: list[Row]) -> str:
    """ONE table: event, calls, failed calls by code, seconds of errors, longest stall,
    recovery, RSS before→after (MB) per process (* = a new process after), budget."""
    roles = roles_of(rows)
    header = ["event", "calls", "failed by code", "errors s", "stall s", "recovery s",
              *[f"{role} MB" for role in roles], "event's own calls / notes", "budget"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        s = row.stats
        rss = []
        for role in roles:
            mark = "*" if role in row.restarted else ""
            rss.append(f"{_mb(row.rss_before.get(role))}→{_mb(row.rss_after.get(role))}{mark}")
        notes = "; ".join([*(f"{k} {n:,}" for k, n in sorted(row.probes.items())), *row.notes])
        budget = "ok" if row.ok else "MISS: " + "; ".join(row.misses)
        recovery = "-" if row.kind == "soak" else _seconds(row.recovery_s)
        cells = [row.event, f"{s.calls:,}", _codes(s.failed), f"{s.error_seconds:.1f}",
                 f"{s.longest_stall_s:.1f}", recovery, *rss, notes or "", budget]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def to_json(rows: list[Row], run: dict) -> str:
    return json.dumps({"run": run, "rows": [asdict(row) for row in rows],
                       "passed": all(row.ok for row in rows)}, indent=2, default=str)


def write_results(results_dir: Path, stamp: str, markdown: str, rows: list[Row], run: dict) -> tuple[Path, Path]:
    results_dir.mkdir(parents=True, exist_ok=True)
    md_path = results_dir / f"soak-{stamp}.md"
    json_path = results_dir / f"soak-{stamp}.json"
    md_path.write_text(markdown + "\n")
    json_path.write_text(to_json(rows, run) + "\n")
    return md_path, json_path
