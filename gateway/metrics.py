"""Prometheus metrics of the gateway, served on --metrics-port. One registry for the process;
every gateway module records through these objects (no module declares its own)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RPCS = Counter(
    "gateway_rpcs_total", "RPCs answered by the gateway, by method and gRPC status code.",
    ["method", "code"],
)
RPC_LATENCY = Histogram(
    "gateway_rpc_latency_seconds", "Time to answer an RPC, by method.", ["method"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
VECTORIZED = Counter(
    "gateway_vectorized_total", "Texts turned into vectors, by the vectorizer that answered.",
    ["vectorizer"],
)
CACHE_LOOKUPS = Counter(
    "gateway_vectorizer_cache_lookups_total", "Vectorizer cache lookups by result (hit/miss).",
    ["result"],
)
BEDROCK_CALLS = Counter(
    "gateway_bedrock_calls_total",
    "Amazon Bedrock calls by API (invoke_flow/converse) and outcome (ok, throttled, timeout, "
    "no_credentials, bad_output, error, deadline, and the permanent access_denied, validation, "
    "not_found, bad_credentials).",
    ["api", "outcome"],
)
BEDROCK_LATENCY = Histogram(
    "gateway_bedrock_latency_seconds", "Latency of Amazon Bedrock calls, by API.", ["api"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 30),
)
FALLBACKS = Counter(
    "gateway_vectorizer_fallbacks_total", "Texts answered by the fallback vectorizer after the "
    "primary failed, by the primary's failure reason.", ["reason"],
)
INFERENCE_UP = Gauge(
    "gateway_inference_backend_up", "1 while the inference backend answers health checks, else 0.",
)
VECTORIZER_DEGRADED = Gauge(
    "gateway_vectorizer_degraded",
    "1 while the configured vectorizer (Bedrock) fails with a permanent error (kind: access_denied, "
    "validation, not_found, bad_credentials, no_credentials) and the fallback answers instead; "
    "0 otherwise.", ["vectorizer", "kind"],
)
