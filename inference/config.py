"""Settings of the inference server, shared by the supervisor and its workers."""

from __future__ import annotations

import os
from dataclasses import dataclass

from recommender.schema import MAX_BATCH_ROWS

BACKENDS = ("auto", "tflite", "xla", "function")
# The proto promises at most 10,000 rows per RecommendBatch message.


def default_workers() -> int:
    # One worker per core: each has its own TensorFlow runtime and gRPC event loop.
    return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ServerConfig:
    models_dir: str
    host: str = "127.0.0.1"
    port: int = 8500
    workers: int = 1
    metrics_port: int = 9100
    poll_interval_s: float = 1.0
    max_batch_size: int = 256
    batch_timeout_ms: float = 1.0
    backend: str = "auto"
    drain_timeout_s: float = 10.0
    max_batch_rows: int = MAX_BATCH_ROWS

    def worker_port(self, index: int) -> int:
        """The port only worker `index` listens on (besides the shared --port)."""
        return self.port + 1 + index

    def worker_ports(self) -> list[int]:
        return [self.worker_port(i) for i in range(self.workers)]
