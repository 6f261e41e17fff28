"""The gateway process: gRPC server with the Vectorize, Recommend and Chat services, the
standard health service (NOT_SERVING while no inference backend answers), server reflection,
Prometheus metrics and a graceful stop on SIGTERM/SIGINT. One grpc.aio event loop serves
every call and drives the one channel to inference: a proxy mostly waits, and the loop
costs less per forwarded call than a thread per call."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from gateway import metrics
from gateway.forwarding import MAX_MESSAGE_BYTES, InferenceClient
from gateway.servicers import (
    ChatServicer,
    CountingVectorizer,
    MetadataServicer,
    RecommendServicer,
    VectorizeServicer,
)
from gateway.vectorizers.base import Vectorizer
from recommender import request_decoding
from recommender.v1 import (
    chat_pb2,
    metadata_pb2,
    recommend_pb2,
    vectorize_pb2,
)

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    vectorize_pb2.DESCRIPTOR.services_by_name["VectorizeService"].full_name,
    recommend_pb2.DESCRIPTOR.services_by_name["RecommendService"].full_name,
    chat_pb2.DESCRIPTOR.services_by_name["ChatService"].full_name,
    metadata_pb2.DESCRIPTOR.services_by_name["MetadataService"].full_name,
)


@dataclass
class GatewayConfig:
    inference: str  # "host:port[,host:port...]"
    port: int = 50051
    host: str = "127.0.0.1"
    vectorizer: str = "local"
    fallback: str = "local"
    cache_size: int = 1024
    bedrock_config: str | None = None
    model_id: str | None = None
    bedrock_timeout_s: float = 10.0
    region: str | None = None
    endpoint_url: str | None = None
    metrics_port: int = 9101  # 0 = no metrics endpoint
    threads: int = 32
    coalesce_in_flight: int = 1  # see gateway.coalescing: 1 measured best on 2 cores
    grace_s: float = 5.0
    health_interval_s: float = 1.0


def build_vectorizer(config: GatewayConfig) -> Vectorizer:
    from gateway.vectorizers.chain import build_vectorizer as build

    return build(
        config.vectorizer,
        fallback=None if config.fallback == "none" else config.fallback,
        cache_size=config.cache_size,
        bedrock_config_path=config.bedrock_config,
        model_id=config.model_id,
        timeout_s=config.bedrock_timeout_s,
        region=config.region,
        endpoint_url=config.endpoint_url,
    )


class BackendHealthWatcher:
    """Polls the inference backends and mirrors the answer into the gateway's own health:
    SERVING while some backend answers SERVING, NOT_SERVING otherwise (so a load balancer
    stops sending customers to a gateway that could only fail them)."""

    def __init__(self, inference: InferenceClient, health_servicer: HealthServicer,
                 interval_s: float = 1.0):
        self.inference = inference
        self.health_servicer = health_servicer
        self.interval_s = interval_s
        self._up: bool | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="backend-health")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def check_once(self) -> bool:
        up = await self.inference.backend_serving(timeout=min(1.0, self.interval_s * 2))
        status = health_pb2.HealthCheckResponse.SERVING if up else health_pb2.HealthCheckResponse.NOT_SERVING
        for service in ("", *SERVICE_NAMES):
            await self.health_servicer.set(service, status)
        metrics.INFERENCE_UP.set(1 if up else 0)
        if up != self._up:
            log.log(logging.INFO if up else logging.WARNING,
                    "event=inference_backend_%s addresses=%s", "up" if up else "down",
                    ",".join(self.inference.addresses))
            self._up = up
        return up

    async def _run(self) -> None:
        while True:
            try:
                await self.check_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the watcher die: health would freeze
                log.exception("event=health_watch_failed")
            await asyncio.sleep(self.interval_s)


class GatewayServer:
    """Build inside a running event loop (`asyncio.run(serve(config))` does)."""

    def __init__(self, config: GatewayConfig, vectorizer: Vectorizer | None = None,
                 chat_engine=None):
        self.config = config
        self.vectorizer = CountingVectorizer(vectorizer or build_vectorizer(config))
        if chat_engine is None:
            from gateway.chat.dialogue import ChatEngine

            chat_engine = ChatEngine(self.vectorizer)
        self.inference = InferenceClient(config.inference)
        # Synchronous work (Bedrock calls, chat turns, text batches) runs here, off the loop.
        self._pool = ThreadPoolExecutor(max_workers=config.threads, thread_name_prefix="blocking")
        self._text_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="batch-texts")
        self.server = grpc.aio.server(
            options=[
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),  # a second gateway on the same port must fail loudly
            ],
        )
        # Registered through recommender.request_decoding so undecodable requests (text that is not UTF-8)
        # get INVALID_ARGUMENT instead of grpc's INTERNAL.
        request_decoding.add_servicer(VectorizeServicer(self.vectorizer, self._pool),
                          vectorize_pb2.DESCRIPTOR.services_by_name["VectorizeService"], self.server)
        request_decoding.add_servicer(RecommendServicer(self.vectorizer, self.inference, self._pool, self._text_pool,
                                            coalesce_in_flight=config.coalesce_in_flight),
                          recommend_pb2.DESCRIPTOR.services_by_name["RecommendService"], self.server)
        request_decoding.add_servicer(ChatServicer(chat_engine, self.inference, self._pool),
                          chat_pb2.DESCRIPTOR.services_by_name["ChatService"], self.server)
        request_decoding.add_servicer(MetadataServicer(self.inference, self.vectorizer.name),
                          metadata_pb2.DESCRIPTOR.services_by_name["MetadataService"], self.server)
        self.health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server)
        self.watcher = BackendHealthWatcher(self.inference, self.health, config.health_interval_s)
        self.bound_port: int | None = None
        self._stopped = False

    async def start(self) -> int:
        for service in ("", *SERVICE_NAMES):
            await self.health.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
        address = f"{self.config.host}:{self.config.port}"
        self.bound_port = self.server.add_insecure_port(address)
        if not self.bound_port:
            raise OSError(f"cannot listen on {address}")
        if self.config.metrics_port:
            start_http_server(self.config.metrics_port, addr=self.config.host)
        await self.server.start()
        self.watcher.start()
        log.info("event=gateway_started address=%s:%d inference=%s vectorizer=%s fallback=%s "
                 "metrics_port=%s", self.config.host, self.bound_port, self.inference.target,
                 self.config.vectorizer, self.config.fallback, self.config.metrics_port or "off")
        return self.bound_port

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop taking new RPCs, let running ones finish within the grace period, close."""
        if self._stopped:
            return
        self._stopped = True
        grace = self.config.grace_s if grace_s is None else grace_s
        log.info("event=gateway_stopping grace_s=%s", grace)
        await self.watcher.stop()
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        await self.inference.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._text_pool.shutdown(wait=False, cancel_futures=True)
        log.info("event=gateway_stopped")


async def serve(config: GatewayConfig) -> None:
    """Run the gateway until SIGTERM or SIGINT, then stop gracefully."""
    server = GatewayServer(config)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, sig, done)
    await server.start()
    await done.wait()
    await server.stop()


def _on_signal(sig: signal.Signals, done: asyncio.Event) -> None:
    log.info("event=signal signal=%s", sig.name)
    done.set()
