"""The gateway process: gRPC server with the Vectorize, Recommend, Chat and Metadata services,
the standard health service (NOT_SERVING while no inference address answers), server
reflection, Prometheus metrics and a graceful stop on SIGTERM/SIGINT. One grpc.aio event loop
serves every call and drives the channels to inference: a proxy mostly waits, and the loop
costs less per forwarded call than a thread per call.

Built in one place (`GatewayServer.__init__`: server, interceptors, services) and bound in one
place (`GatewayServer.start` through recommender.serving.bind); the channels to inference are
made in gateway.backend.open_channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from gateway import metrics
from gateway.backend import InferenceBackend
from gateway.coalescing import RecommendCoalescer
from gateway.handlers import CountingVectorizer, Handlers
from gateway.servicers import ChatServicer, MetadataServicer, RecommendServicer, VectorizeServicer
from gateway.vectorizers.base import Vectorizer
from recommender import request_decoding, serving
from recommender.settings import GatewaySettings
from recommender.v1 import chat_pb2, metadata_pb2, recommend_pb2, vectorize_pb2

log = logging.getLogger(__name__)

SERVICES = (
    vectorize_pb2.DESCRIPTOR.services_by_name["VectorizeService"],
    recommend_pb2.DESCRIPTOR.services_by_name["RecommendService"],
    chat_pb2.DESCRIPTOR.services_by_name["ChatService"],
    metadata_pb2.DESCRIPTOR.services_by_name["MetadataService"],
)
SERVICE_NAMES = tuple(s.full_name for s in SERVICES)


def build_vectorizer(settings: GatewaySettings) -> Vectorizer:
    from gateway.vectorizers.chain import build_vectorizer as build

    return build(
        settings.vectorizer,
        fallback=None if settings.fallback == "none" else settings.fallback,
        cache_size=settings.cache_size,
        bedrock_config_path=settings.bedrock_config,
        model_id=settings.model_id,
        timeout_s=settings.bedrock_timeout_s,
        region=settings.region,
        endpoint_url=settings.endpoint_url,
    )


class BackendHealthWatcher:
    """Checks every inference address each interval (the backend ejects the silent ones and
    lets them back when they answer) and mirrors the result into the gateway's own health:
    SERVING while some address answers SERVING, NOT_SERVING otherwise (so a load balancer stops
    sending customers to a gateway that could only fail them)."""

    def __init__(self, backend: InferenceBackend, health_servicer: HealthServicer, interval_s: float = 1.0):
        self.backend = backend
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
        up = await self.backend.check(timeout=min(1.0, max(0.2, self.interval_s)))
        status = health_pb2.HealthCheckResponse.SERVING if up else health_pb2.HealthCheckResponse.NOT_SERVING
        for service in ("", *SERVICE_NAMES):
            await self.health_servicer.set(service, status)
        metrics.INFERENCE_UP.set(1 if up else 0)
        if up != self._up:
            log.log(logging.INFO if up else logging.WARNING,
                    "event=inference_backend_%s addresses=%s", "up" if up else "down",
                    ",".join(self.backend.addresses))
            self._up = up
        return up

    async def _run(self) -> None:
        while True:
            try:
                await self.check_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let the watcher die: health would freeze
                log.error("event=health_watch_failed error=%s message=%r", type(exc).__name__, str(exc))
            await asyncio.sleep(self.interval_s)


class GatewayServer:
    """Build inside a running event loop (`asyncio.run(serve(settings))` does)."""

    def __init__(self, settings: GatewaySettings, vectorizer: Vectorizer | None = None,
                 chat_engine=None, interceptors: Sequence[grpc.aio.ServerInterceptor] = ()):
        self.settings = settings
        self.vectorizer = CountingVectorizer(vectorizer or build_vectorizer(settings))
        if chat_engine is None:
            from gateway.chat.dialogue import ChatEngine

            chat_engine = ChatEngine(self.vectorizer)
        self.backend = InferenceBackend(settings)
        # Blocking work (Bedrock calls, text batches) runs here, off the loop.
        self._pool = ThreadPoolExecutor(max_workers=settings.threads, thread_name_prefix="blocking")
        self._text_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="batch-texts")
        coalescer = (RecommendCoalescer(self.backend, max_in_flight=settings.coalesce_in_flight)
                     if settings.coalesce_in_flight > 0 else None)
        self.handlers = Handlers(self.vectorizer, self.backend, chat_engine, self._pool, self._text_pool,
                                 coalescer=coalescer)
        self.server = serving.new_server(settings, interceptors=interceptors, metrics_prefix="gateway")
        # Registered through recommender.request_decoding so undecodable requests (text that is
        # not UTF-8) get INVALID_ARGUMENT instead of grpc's INTERNAL.
        for servicer, service in zip(
                (VectorizeServicer(self.handlers), RecommendServicer(self.handlers),
                 ChatServicer(self.handlers), MetadataServicer(self.handlers)), SERVICES, strict=True):
            request_decoding.add_servicer(servicer, service, self.server)
        self.health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server)
        self.watcher = BackendHealthWatcher(self.backend, self.health, settings.health_interval_s)
        self.bound_port: int | None = None
        self._stopped = False

    async def start(self) -> int:
        for service in ("", *SERVICE_NAMES):
            await self.health.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
        self.bound_port = serving.bind(self.server, self.settings.host, self.settings.port, self.settings)
        if self.settings.metrics_port:
            start_http_server(self.settings.metrics_port, addr=self.settings.host)
        await self.server.start()
        self.watcher.start()
        # Health service "vectorizer": NOT_SERVING while Bedrock fails permanently (the fallback answers).
        from gateway.bedrock.smoke import publish_health

        await publish_health(self.vectorizer, self.health)
        log.info("event=gateway_started address=%s:%d inference=%s vectorizer=%s fallback=%s "
                 "coalescing=%s metrics_port=%s", self.settings.host, self.bound_port,
                 ",".join(self.backend.addresses), self.settings.vectorizer, self.settings.fallback,
                 self.settings.coalesce_in_flight or "off", self.settings.metrics_port or "off")
        return self.bound_port

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop taking new RPCs, let running ones finish within the grace period, close."""
        if self._stopped:
            return
        self._stopped = True
        grace = self.settings.grace_s if grace_s is None else grace_s
        log.info("event=gateway_stopping grace_s=%s", grace)
        await self.watcher.stop()
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        await self.backend.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._text_pool.shutdown(wait=False, cancel_futures=True)
        log.info("event=gateway_stopped")


async def serve(settings: GatewaySettings) -> None:
    """Run the gateway until SIGTERM or SIGINT, then stop gracefully."""
    vectorizer = build_vectorizer(settings)
    if settings.bedrock_check:  # one canary call; a permanent error refuses the start (ValueError)
        from gateway.bedrock.smoke import start_check

        await asyncio.get_running_loop().run_in_executor(
            None, start_check, vectorizer, settings.bedrock_timeout_s * 3)
    server = GatewayServer(settings, vectorizer=vectorizer)
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
