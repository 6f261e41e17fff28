"""Prometheus metrics of the inference server.

Workers are separate processes, so metrics use prometheus_client's multiprocess mode: the
supervisor points PROMETHEUS_MULTIPROC_DIR at a fresh folder before starting workers, each
worker writes its samples there, and the supervisor alone serves /metrics on
--metrics-port, aggregating all workers. Every worker-level metric carries a `worker`
label (its index, stable across restarts) so load spreading is visible.
"""

from __future__ import annotations

import os

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class WorkerMetrics:
    """The metrics one worker records. Import prometheus_client only after the
    multiprocess folder is set (the supervisor sets it in the worker's environment)."""

    def __init__(self, worker: int):
        from prometheus_client import Counter, Gauge, Histogram

        self.worker = str(worker)
        self.requests = Counter(
            "inference_requests_total", "RPCs answered, by method and gRPC status code",
            ["method", "code", "worker"])
        self.rows = Counter("inference_rows_total", "Customer vectors scored by RecommendBatch/RecommendStream (Recommend: see requests)", ["worker"])
        self.latency = Histogram(
            "inference_request_latency_seconds", "Server-side RPC latency", ["method"],
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0))
        self.batch_size = Histogram(
            "inference_batch_size", "Rows per model call", ["source"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 10000))
        self.model_version = Gauge(
            "inference_model_version", "Newest model version loaded, per worker", ["worker"],
            multiprocess_mode="livemax")
        self.load_failures = Counter(
            "inference_model_load_failures_total", "Model versions that failed to load", ["worker"])
        self.loads = Counter("inference_model_loads_total", "Model versions loaded", ["worker"])
        self._request_children: dict[tuple[str, str], object] = {}
        self._latency_children = {}
        self._rows = self.rows.labels(self.worker)
        self._batched = self.batch_size.labels("dynamic_batcher")
        self._batch_rpc = self.batch_size.labels("batch_rpc")

    def observe_request(self, method: str, code: str, seconds: float, rows: int) -> None:
        key = (method, code)
        child = self._request_children.get(key)
        if child is None:  # labels() is slow-ish; cache the children on the hot path
            child = self._request_children[key] = self.requests.labels(method, code, self.worker)
        child.inc()
        hist = self._latency_children.get(method)
        if hist is None:
            hist = self._latency_children[method] = self.latency.labels(method)
        hist.observe(seconds)
        if rows:
            self._rows.inc(rows)

    def observe_rows(self, rows: int) -> None:
        """Customer vectors scored by a batch or stream message."""
        self._rows.inc(rows)

    def observe_batch(self, rows: int, source: str = "dynamic_batcher") -> None:
        (self._batched if source == "dynamic_batcher" else self._batch_rpc).observe(rows)

    def model_loaded(self, version: int) -> None:
        self.loads.labels(self.worker).inc()
        self.model_version.labels(self.worker).set(version)

    def load_failed(self) -> None:
        self.load_failures.labels(self.worker).inc()


def supervisor_metrics():
    from prometheus_client import Counter

    return Counter("inference_worker_restarts_total", "Workers restarted after they died", ["worker"])


def serve_aggregated(port: int, host: str = "127.0.0.1"):
    """Serve /metrics for all workers (supervisor only)."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=os.environ[MULTIPROC_ENV])
    return start_http_server(port, addr=host, registry=registry)


def worker_died(pid: int) -> None:
    """Drop a dead worker's live gauges (its counters keep counting in the totals)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)
