"""Composition of vectorizers: an LRU cache in front of Bedrock, a fallback behind it, and the
factory the gateway server calls with its flags.

The chain the factory builds for a Bedrock vectorizer with `--fallback local`:

    FallbackVectorizer(CachingVectorizer(Bedrock...), LocalVectorizer)

The cache wraps only the primary, so only Bedrock answers are cached: a local answer given
during an outage is never served from the cache after Bedrock recovers.
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import replace

from gateway import metrics
from gateway.vectorizers.base import (
    BEDROCK_CONVERSE,
    BEDROCK_FLOW,
    CACHE,
    LOCAL,
    NAMES,
    InvalidModelOutput,
    Vectorizer,
    VectorizeResult,
    VectorizerUnavailable,
)
from recommender.settings import DEFAULT_CACHE_SIZE  # the one default (gateway --cache-size)

log = logging.getLogger(__name__)

def normalize_key(text: str) -> str:
    """Cache key: texts that differ only in Unicode form, case or spacing share a vector."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


class CachingVectorizer:
    """Thread-safe LRU cache of vectors keyed by normalized text; hits report vectorizer=cache.

    Only successful answers are cached (exceptions pass through). Concurrent misses on the
    same text may both call the inner vectorizer; that costs a duplicate call, never a wrong
    answer, and keeps the lock out of the slow path."""

    def __init__(self, inner: Vectorizer, size: int = DEFAULT_CACHE_SIZE):
        if size < 1:
            raise ValueError(f"cache size must be at least 1, got {size}")
        self.inner = inner
        self.name = inner.name
        self.size = size
        self._entries: OrderedDict[str, VectorizeResult] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def vectorize(self, text: str) -> VectorizeResult:
        key = normalize_key(text)
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
        if hit is not None:
            metrics.CACHE_LOOKUPS.labels(result="hit").inc()
            return replace(hit, vectorizer=CACHE)
        metrics.CACHE_LOOKUPS.labels(result="miss").inc()
        result = self.inner.vectorize(text)
        with self._lock:
            self._entries[key] = result
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return result


def failure_reason(exc: VectorizerUnavailable) -> str:
    """The metrics label of a failure: BedrockUnavailable carries one; bad output is bad_output."""
    if isinstance(exc, InvalidModelOutput):
        return "bad_output"
    return getattr(exc, "reason", "unavailable")


class FallbackVectorizer:
    """Ask `primary`; when it is unavailable or answers garbage, ask `fallback` (if set).

    Without a fallback the primary's VectorizerUnavailable propagates (the gateway answers
    UNAVAILABLE). Either way the result's `vectorizer` names who really answered."""

    def __init__(self, primary: Vectorizer, fallback: Vectorizer | None):
        self.primary = primary
        self.fallback = fallback
        self.name = primary.name

    def vectorize(self, text: str) -> VectorizeResult:
        try:
            return self.primary.vectorize(text)
        except VectorizerUnavailable as exc:
            if self.fallback is None:
                raise
            reason = failure_reason(exc)
            metrics.FALLBACKS.labels(reason=reason).inc()
            # A permanent error is logged once, with its remedy, by the Bedrock vectorizer's
            # health (event=bedrock_degraded); one warning per customer call would bury it.
            level = logging.DEBUG if getattr(exc, "permanent", False) else logging.WARNING
            log.log(level, "event=vectorizer_fallback primary=%s fallback=%s reason=%s error=%r",
                    self.primary.name, self.fallback.name, reason, str(exc))
            return self.fallback.vectorize(text)


def _local() -> Vectorizer:
    # Imported lazily: the local vectorizer's phrase tables are only compiled when it is used.
    from gateway.vectorizers.local import LocalVectorizer

    return LocalVectorizer()


def build_vectorizer(name: str, *, fallback: str | None = None, cache_size: int = DEFAULT_CACHE_SIZE,
                     bedrock_config_path: str | None = None, model_id: str | None = None,
                     timeout_s: float = 10.0, region: str | None = None, endpoint_url: str | None = None,
                     max_attempts: int = 3, converse_output: str = "tool") -> Vectorizer:
    """The vectorizer the gateway serves with, from its flags.

    name: local | bedrock-flow | bedrock-converse. fallback: "local" or None/"none".
    cache_size: LRU entries in front of Bedrock (0 disables; the local vectorizer is never
    cached, it is faster than a lookup would save). bedrock_config_path: the flow's JSON
    config (required for bedrock-flow). region/endpoint_url override the AWS defaults
    (endpoint_url is for tests and VPC endpoints). max_attempts counts all attempts per call.
    Raises ValueError on a bad combination, so a misconfigured gateway fails at start-up."""
    if name not in NAMES:
        raise ValueError(f"unknown vectorizer {name!r}; choose one of {', '.join(NAMES)}")
    if fallback in (None, "", "none"):
        fallback = None
    elif fallback != LOCAL:
        raise ValueError(f"unknown fallback {fallback!r}; the only fallback is {LOCAL!r} (or none)")
    if cache_size < 0:
        raise ValueError(f"cache size must be >= 0, got {cache_size}")
    if name == LOCAL:
        return _local()

    from gateway.vectorizers import bedrock  # boto3 is only imported when Bedrock is used

    primary: Vectorizer
    if name == BEDROCK_FLOW:
        if not bedrock_config_path:
            raise ValueError("bedrock-flow needs --bedrock-config (a JSON file with region, "
                             "flowIdentifier, flowAliasIdentifier); see docs/bedrock.md")
        primary = bedrock.BedrockFlowVectorizer.from_config_file(
            bedrock_config_path, region=region, endpoint_url=endpoint_url, timeout_s=timeout_s,
            max_attempts=max_attempts)
    else:
        assert name == BEDROCK_CONVERSE
        primary = bedrock.BedrockConverseVectorizer(
            region=bedrock.resolve_region(region), model_id=model_id or bedrock.DEFAULT_MODEL_ID,
            endpoint_url=endpoint_url, timeout_s=timeout_s, max_attempts=max_attempts,
            output=converse_output)
    if cache_size:
        primary = CachingVectorizer(primary, cache_size)
    return FallbackVectorizer(primary, _local() if fallback else None)
