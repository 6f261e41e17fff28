"""How well a vectorizer reads customer text: per-slot accuracy, exact-vector accuracy and latency
on a labelled JSONL file (one `{"text": ..., "features": [6 numbers]}` per line).

Any vectorizer the gateway can serve with is evaluated the same way, built by the same builder
the server uses (no cache, no fallback: the vectorizer itself is measured):

    python -m gateway evaluate --vectorizer local --labels tests/data/labelled/dev_new.jsonl
    python -m gateway evaluate --vectorizer bedrock-converse --labels FILE --endpoint-url http://...

A message the vectorizer cannot answer (VectorizerUnavailable) counts as wrong in every slot and
is reported under `errors`. Latency is per message, wall clock, after a short warm-up.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gateway.vectorizers.base import Vectorizer, VectorizerUnavailable
from recommender import schema


@dataclass(frozen=True)
class LabelledMessage:
    text: str
    features: tuple[float, ...]


@dataclass(frozen=True)
class Miss:
    text: str
    want: tuple[float, ...]
    got: tuple[float, ...] | None  # None: the vectorizer raised
    slots: tuple[str, ...]


@dataclass
class Report:
    messages: int
    per_slot: dict[str, float]
    exact: float
    errors: int
    latency_us: dict[str, float]  # p50, p95, p99, mean
    misses: list[Miss] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"messages": self.messages, "per_slot": self.per_slot, "exact": self.exact,
                "errors": self.errors, "latency_us": self.latency_us}


def load_labelled(paths: str | Path | Iterable[str | Path]) -> list[LabelledMessage]:
    """Messages of one or more labelled JSONL files; a malformed line is a ValueError naming it."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    messages = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    features = schema.validate_features(row["features"])
                    text = str(row["text"])
                except (ValueError, KeyError, TypeError) as exc:
                    raise ValueError(f"{path}:{number}: not a labelled message: {exc}") from exc
                messages.append(LabelledMessage(text, features))
    return messages


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values (q in 0..100)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def evaluate(vectorizer: Vectorizer, messages: Sequence[LabelledMessage], warmup: int = 20) -> Report:
    """Run `vectorizer` over every message; compare with the labels slot by slot."""
    for message in messages[:warmup]:
        try:
            vectorizer.vectorize(message.text)
        except VectorizerUnavailable:
            pass
    correct = [0] * schema.FEATURE_COUNT
    exact = errors = 0
    latencies: list[float] = []
    misses: list[Miss] = []
    for message in messages:
        started = time.perf_counter()
        try:
            got: tuple[float, ...] | None = tuple(vectorizer.vectorize(message.text).features)
        except VectorizerUnavailable:
            got = None
        latencies.append((time.perf_counter() - started) * 1e6)
        if got is None:
            errors += 1
            misses.append(Miss(message.text, message.features, None, schema.SLOT_NAMES))
            continue
        wrong = tuple(name for name, g, w in zip(schema.SLOT_NAMES, got, message.features, strict=True) if g != w)
        for i, name in enumerate(schema.SLOT_NAMES):
            correct[i] += name not in wrong
        if wrong:
            misses.append(Miss(message.text, message.features, got, wrong))
        else:
            exact += 1
    n = max(1, len(messages))
    latencies.sort()
    return Report(
        messages=len(messages),
        per_slot={name: correct[i] / n for i, name in enumerate(schema.SLOT_NAMES)},
        exact=exact / n,
        errors=errors,
        latency_us={"p50": _percentile(latencies, 50), "p95": _percentile(latencies, 95),
                    "p99": _percentile(latencies, 99), "mean": sum(latencies) / n},
        misses=misses,
    )


def format_report(report: Report, name: str = "", show_misses: bool = False) -> str:
    lines = [f"{name or 'vectorizer'} on {report.messages} labelled messages"
             + (f" ({report.errors} unanswered)" if report.errors else "")]
    for slot_name, accuracy in report.per_slot.items():
        lines.append(f"  {slot_name:<9}{accuracy:8.1%}")
    lines.append(f"  {'exact':<9}{report.exact:8.1%}")
    lat = report.latency_us
    lines.append(f"  latency µs/message: p50 {lat['p50']:.0f}  p95 {lat['p95']:.0f}  p99 {lat['p99']:.0f}"
                 f"  mean {lat['mean']:.0f}")
    if show_misses:
        for miss in report.misses:
            got = "error" if miss.got is None else [f"{v:g}" for v in miss.got]
            lines.append(f"MISS {','.join(miss.slots)}: {miss.text!r} want={[f'{v:g}' for v in miss.want]} got={got}")
    return "\n".join(lines)


def build_for_evaluation(name: str, **options) -> Vectorizer:
    """The vectorizer `name` as the server builds it, without cache or fallback (options left
    as None are the server's defaults)."""
    from gateway.vectorizers.chain import build_vectorizer

    given = {key: value for key, value in options.items() if value is not None}
    return build_vectorizer(name, fallback=None, cache_size=0, **given)
