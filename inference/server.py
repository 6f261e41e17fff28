"""One inference worker: a grpc.aio server on the shared port (SO_REUSEPORT) and on its
own port, with health, reflection, model polling and a graceful SIGTERM.

Health is NOT_SERVING until a version is loaded and warmed up. Model loading runs in a
thread so the event loop keeps answering while a new version loads; installing it is an
atomic swap in the ModelManager, so no request is dropped.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from inference.batching import DynamicBatcher
from inference.manager import ModelManager
from inference.metrics import WorkerMetrics
from inference.repository import VersionSource
from inference.servicer import MetadataServicer, RecommendCallsInFlight, RecommendServicer
from recommender import request_decoding, serving
from recommender.settings import InferenceSettings
from recommender.v1 import metadata_pb2, recommend_pb2

log = logging.getLogger("inference.server")

SERVICE_NAME = recommend_pb2.DESCRIPTOR.services_by_name["RecommendService"].full_name
METADATA_SERVICE_NAME = metadata_pb2.DESCRIPTOR.services_by_name["MetadataService"].full_name
KEEP_VERSIONS = 2


class ModelPoller:
    """Loads new versions from the source into the manager (blocking; run in a thread)."""

    def __init__(self, config: InferenceSettings, manager: ModelManager, metrics: WorkerMetrics, worker: int):
        self.config = config
        self.manager = manager
        self.metrics = metrics
        self.worker = worker
        self.source = VersionSource(config.models_dir)

    def poll_once(self) -> list[int]:
        from inference.loader import ModelLoadError, load_version  # TensorFlow import

        installed = []
        for version in self.source.candidates(set(self.manager.versions()), keep=KEEP_VERSIONS):
            try:
                model = load_version(self.source.version_dir(version), version, self.config.backend,
                                     max_rows=self.config.max_batch_rows)
            except ModelLoadError as exc:
                self.source.mark_failed(version)
                self.metrics.load_failed()
                log.error("event=model_load_failed worker=%d version=%d reason=%r; keeping versions %s",
                          self.worker, version, str(exc), self.manager.versions())
                continue
            dropped = self.manager.install(model)
            self.metrics.model_loaded(max(self.manager.versions()))
            installed.append(version)
            log.info("event=model_loaded worker=%d version=%d backend=%s seconds=%.2f serving=%s unloaded=%s",
                     self.worker, version, model.backend, model.load_seconds, self.manager.versions(), dropped)
        return installed


def build_server(config: InferenceSettings, manager: ModelManager, batcher: DynamicBatcher,
                 metrics: WorkerMetrics, poller: ModelPoller, health: HealthServicer,
                 interceptors: Sequence[grpc.aio.ServerInterceptor] = ()) -> grpc.aio.Server:
    """THE place a worker's server is built: limits and interceptors (recommender.serving),
    the services, health and reflection. SO_REUSEPORT: every worker shares --port."""
    # Last interceptor: the batcher counts Recommend calls in flight (inference/batching.py).
    server = serving.new_server(config, interceptors=[*interceptors, RecommendCallsInFlight(batcher)],
                                reuseport=True, metrics_prefix="inference")
    # Lenient decoding: bytes that are not a valid request (text that is not UTF-8) reach the
    # servicer as UndecodableRequest and get INVALID_ARGUMENT, not grpc's UNKNOWN.
    request_decoding.add_servicer(RecommendServicer(manager, batcher, metrics, config.max_batch_rows),
                                  recommend_pb2.DESCRIPTOR.services_by_name["RecommendService"], server)
    request_decoding.add_servicer(MetadataServicer(manager, poller.source, metrics, config.max_batch_rows),
                                  metadata_pb2.DESCRIPTOR.services_by_name["MetadataService"], server)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, METADATA_SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME),
        server)
    return server


async def serve_worker(config: InferenceSettings, worker: int) -> None:
    metrics = WorkerMetrics(worker)
    manager: ModelManager = ModelManager(keep=KEEP_VERSIONS)
    batcher = DynamicBatcher(config.max_batch_size, config.batch_timeout_ms / 1000.0,
                             on_batch=metrics.observe_batch, adaptive=config.batch_adaptive)
    poller = ModelPoller(config, manager, metrics, worker)
    health = HealthServicer()
    server = build_server(config, manager, batcher, metrics, poller, health)
    for service in ("", SERVICE_NAME):
        await health.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)

    own_port = config.worker_port(worker)
    for port in (config.port, own_port):
        serving.bind(server, config.host, port, config)
    await server.start()
    log.info("event=worker_listening worker=%d shared_port=%d own_port=%d", worker, config.port, own_port)

    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)

    is_serving = False

    async def poll_forever():
        nonlocal is_serving
        while not stopping.is_set():
            try:
                # Listing the folder is a few syscalls: do it on the loop. Only a real load goes
                # to a thread (a background thread contending for the GIL adds latency spikes).
                if poller.source.candidates(set(manager.versions()), keep=KEEP_VERSIONS):
                    if await loop.run_in_executor(None, poller.poll_once):
                        # TensorFlow's objects and the loaded model live for the whole process:
                        # collect the load's garbage (the SavedModel object, in cycles), then
                        # freeze the survivors out of the collector so later collections stay
                        # short. Only the first collect is slow (~0.5 s) and it runs before
                        # health turns SERVING; later ones only walk the new version's objects.
                        gc.collect()
                        gc.freeze()
            except Exception:  # a bad folder must not stop polling
                log.exception("event=poll_error worker=%d", worker)
            if manager.ready and not is_serving:
                is_serving = True
                for service in ("", SERVICE_NAME):
                    await health.set(service, health_pb2.HealthCheckResponse.SERVING)
            try:
                await asyncio.wait_for(stopping.wait(), config.poll_interval_s)
            except TimeoutError:
                pass

    polling = asyncio.create_task(poll_forever())
    await stopping.wait()
    log.info("event=draining worker=%d grace_s=%.1f", worker, config.drain_timeout_s)
    await health.enter_graceful_shutdown()
    # stop() refuses new RPCs at once and lets in-flight ones finish within the grace.
    await server.stop(config.drain_timeout_s)
    polling.cancel()
    log.info("event=worker_stopped worker=%d", worker)


def run_worker(config: InferenceSettings, worker: int) -> None:
    asyncio.run(serve_worker(config, worker))
