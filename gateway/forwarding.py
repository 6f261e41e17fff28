"""The gateway's side of gateway -> inference: ONE long-lived gRPC channel to every inference
address, balanced round-robin, with retries on UNAVAILABLE, keepalive and message size limits
all declared once in the channel's service config and options.

Callers pass the time left on their own incoming call as `timeout`, so a client's deadline
bounds the whole two-hop request. When no inference server is reachable an RPC fails fast
(wait_for_ready is off) with UNAVAILABLE and a message that says which addresses were tried.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
from collections import Counter
from collections.abc import AsyncIterable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.vectorizers.base import CACHE, VectorizeResult
from recommender import schema
from recommender.v1 import metadata_pb2, metadata_pb2_grpc, recommend_pb2, recommend_pb2_grpc

log = logging.getLogger(__name__)

RECOMMEND_SERVICE = "recommender.v1.RecommendService"
# 10,000-row batches are ~1 MB on the way back (indices + scores + features); leave room.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# A caller without a deadline still must not hang the gateway's threads forever.
DEFAULT_TIMEOUT_S = 30.0


class BackendUnavailable(grpc.RpcError):
    """Raised instead of a bare channel error so the status message names the backend."""

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(details)
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def parse_addresses(spec: str | Sequence[str]) -> list[str]:
    """'h1:p1,h2:p2' (or a list of such strings) -> ['h1:p1', 'h2:p2'], each checked."""
    parts = spec.split(",") if isinstance(spec, str) else [p for s in spec for p in s.split(",")]
    addresses = [p.strip() for p in parts if p.strip()]
    if not addresses:
        raise ValueError("--inference needs at least one host:port address")
    for address in addresses:
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"inference address {address!r} must be host:port, e.g. 127.0.0.1:8500")
    return addresses


def channel_target(addresses: Sequence[str]) -> str:
    """A single gRPC target naming every address, so one channel balances across all of them.

    The `ipv4:` scheme takes a comma-separated list; host names are resolved once here (the
    inference fleet is static per gateway process)."""
    resolved = []
    for address in addresses:
        host, _, port = address.rpartition(":")
        host = host.strip("[]")
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = ipaddress.ip_address(socket.getaddrinfo(host, int(port), socket.AF_INET)[0][4][0])
        if ip.version != 4:
            raise ValueError(f"inference address {address!r}: only IPv4 addresses are supported")
        resolved.append(f"{ip}:{port}")
    return "ipv4:" + ",".join(resolved)


def service_config(max_attempts: int = 3) -> str:
    """Round-robin over all addresses; a call that fails with UNAVAILABLE (a backend
    restarting, a connection reset) is retried on another backend with a short backoff."""
    return json.dumps({
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [{
            "name": [{"service": RECOMMEND_SERVICE}],
            "waitForReady": False,
            "retryPolicy": {
                "maxAttempts": max_attempts,
                "initialBackoff": "0.02s",
                "maxBackoff": "0.2s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }],
    })


def channel_options(max_attempts: int = 3) -> list[tuple[str, object]]:
    return [
        ("grpc.service_config", service_config(max_attempts)),
        ("grpc.enable_retries", 1),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        # Keepalive finds a dead backend connection (a killed worker, a dropped NAT entry)
        # before a customer request does.
        ("grpc.keepalive_time_ms", 20_000),
        ("grpc.keepalive_timeout_ms", 5_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        # Reconnect quickly after a backend restart instead of the default ~1-120 s backoff.
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 2_000),
        # One process per gateway: don't let two gateways' channels share subchannels.
        ("grpc.use_local_subchannel_pool", 1),
    ]


class InferenceClient:
    """Forwards vectors to the inference servers over one shared grpc.aio channel.

    Create it inside the gateway's event loop. Coroutines for the servicers; `recommend_blocking`
    for plain-Python code running on a worker thread (the chat engine)."""

    def __init__(self, addresses: str | Sequence[str], *, max_attempts: int = 3):
        self.addresses = parse_addresses(addresses)
        self.target = channel_target(self.addresses)
        self._loop = asyncio.get_running_loop()
        self._channel = grpc.aio.insecure_channel(self.target, options=channel_options(max_attempts))
        self._stub = recommend_pb2_grpc.RecommendServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self._metadata = metadata_pb2_grpc.MetadataServiceStub(self._channel)

    # ------------------------------------------------------------------ calls

    async def recommend(self, features: Sequence[float], top_k: int = 0, model_version: int = 0,
                        timeout: float | None = None) -> recommend_pb2.RecommendResponse:
        request = recommend_pb2.RecommendRequest(
            features=features, top_k=top_k, model_version=model_version)
        return await self._call(self._stub.Recommend, request, timeout)

    def recommend_blocking(self, features: Sequence[float], top_k: int = 0, model_version: int = 0,
                           timeout: float | None = None) -> recommend_pb2.RecommendResponse:
        """`recommend` for a worker thread: runs the call on the gateway's loop and waits."""
        future = asyncio.run_coroutine_threadsafe(
            self.recommend(features, top_k, model_version, timeout), self._loop)
        return future.result()

    async def recommend_batch(self, flat_features: Sequence[float], top_k: int = 0,
                              model_version: int = 0, timeout: float | None = None,
                              ) -> recommend_pb2.RecommendBatchResponse:
        request = recommend_pb2.RecommendBatchRequest(
            features=flat_features, top_k=top_k, model_version=model_version)
        return await self.forward_batch(request, timeout)

    async def forward_batch(self, request: recommend_pb2.RecommendBatchRequest,
                            timeout: float | None = None) -> recommend_pb2.RecommendBatchResponse:
        """Forward an already-built vector batch as is (no copy of its rows)."""
        return await self._call(self._stub.RecommendBatch, request, timeout)

    async def metadata(self, timeout: float | None = None) -> metadata_pb2.GetMetadataResponse:
        """The backend's MetadataService answer (its versions, catalog, signature)."""
        return await self._call(self._metadata.GetMetadata, metadata_pb2.GetMetadataRequest(), timeout)

    def open_stream(self, requests: AsyncIterable[recommend_pb2.RecommendStreamRequest],
                    timeout: float | None = None):
        """Start one backend RecommendStream fed by `requests`. Returns the call: `await
        call.read()` gives one response per request, in order (grpc.aio.EOF at the end)."""
        return self._stub.RecommendStream(requests, timeout=timeout)

    async def _call(self, method, request, timeout):
        try:
            return await method(request, timeout=DEFAULT_TIMEOUT_S if timeout is None else max(timeout, 0.001))
        except grpc.RpcError as exc:
            raise self.explain(exc) from None

    def explain(self, exc: grpc.RpcError) -> grpc.RpcError:
        """Backend errors keep their code; UNAVAILABLE says where the gateway looked."""
        if isinstance(exc, BackendUnavailable) or exc.code() != grpc.StatusCode.UNAVAILABLE:
            return exc
        return BackendUnavailable(
            grpc.StatusCode.UNAVAILABLE,
            f"inference server unavailable at {','.join(self.addresses)}: {exc.details()}",
        )

    # ------------------------------------------------------------------ health

    async def backend_serving(self, timeout: float = 1.0) -> bool:
        """True when some inference backend answers health SERVING. Round-robin sends each
        check to the next ready backend, so one try per address covers them all."""
        for _ in range(len(self.addresses)):
            try:
                reply = await self._health.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
            except grpc.RpcError:
                continue
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return True
        return False

    async def close(self) -> None:
        await self._channel.close()


# ---------------------------------------------------------------------------- text batches
# A batch of texts becomes ONE forwarded vector batch: each text is vectorized here, rows
# whose text is invalid are kept out of the forwarded batch and reported in `errors` with
# their index in the caller's request, and the backend's answer is spread back over all rows.


@dataclass
class PreparedBatch:
    """A caller's batch after vectorizing: what to forward and how to map the answer back."""

    rows: int  # N, rows in the caller's request
    request: recommend_pb2.RecommendBatchRequest | None  # to forward; None when no row is valid
    forwarded_rows: list[int] = field(default_factory=list)  # caller row of each forwarded row
    errors: list[recommend_pb2.RowError] = field(default_factory=list)  # rows rejected here
    all_features: list[float] = field(default_factory=list)  # N*6, zeros for rejected rows
    vectorizer: str = ""  # the vectorizer that answered most rows ('' for feature batches)
    top_k: int = 0  # the resolved top_k (used when nothing is forwarded)


def prepare_text_batch(texts: Sequence[str], top_k: int, model_version: int,
                       vectorize: Callable[[str], VectorizeResult],
                       pool: ThreadPoolExecutor | None = None) -> PreparedBatch:
    """Vectorize each text (through `pool` when the vectorizer is a slow remote one).

    Raises VectorizerUnavailable when the vectorizer cannot answer at all: the caller gets
    UNAVAILABLE for the batch and can retry it whole, rather than rows silently missing."""
    resolved_top_k = schema.resolve_top_k(top_k)

    def one(text: str) -> VectorizeResult | schema.InvalidText:
        try:
            return vectorize(schema.validate_text(text))
        except schema.InvalidText as exc:
            return exc

    results = list(pool.map(one, texts)) if pool is not None else [one(t) for t in texts]
    prepared = PreparedBatch(rows=len(texts), request=None, top_k=resolved_top_k)
    flat: list[float] = []
    answered_by: Counter[str] = Counter()
    for row, result in enumerate(results):
        if isinstance(result, schema.InvalidText):
            prepared.errors.append(recommend_pb2.RowError(row=row, message=f"texts[{row}]: {result}"))
            prepared.all_features.extend([0.0] * schema.FEATURE_COUNT)
            continue
        prepared.forwarded_rows.append(row)
        flat.extend(result.features)
        prepared.all_features.extend(result.features)
        answered_by[result.vectorizer] += 1
    if answered_by:
        # A batch reports one vectorizer: the backend that answered most rows, not the cache.
        non_cache = [(n, c) for n, c in answered_by.most_common() if n != CACHE]
        prepared.vectorizer = (non_cache or answered_by.most_common())[0][0]
    if flat:
        prepared.request = recommend_pb2.RecommendBatchRequest(
            features=flat, top_k=top_k, model_version=model_version)
    return prepared


def merge_batch(prepared: PreparedBatch, answer: recommend_pb2.RecommendBatchResponse | None,
                vectorizer_enum: int) -> recommend_pb2.RecommendBatchResponse:
    """The caller's N-row response from the backend's answer for the forwarded rows."""
    n = prepared.rows
    k = answer.top_k if answer is not None else prepared.top_k
    indices = np.full((n, k), -1, dtype=np.int32)
    scores = np.zeros((n, k), dtype=np.float32)
    errors = list(prepared.errors)
    response = recommend_pb2.RecommendBatchResponse(top_k=k, rows=n, vectorizer=vectorizer_enum)
    if answer is not None:
        forwarded = np.asarray(prepared.forwarded_rows, dtype=np.int64)
        indices[forwarded] = np.asarray(answer.product_indices, dtype=np.int32).reshape(-1, k)
        scores[forwarded] = np.asarray(answer.scores, dtype=np.float32).reshape(-1, k)
        for error in answer.errors:
            errors.append(recommend_pb2.RowError(row=int(forwarded[error.row]), message=error.message))
        response.model_version = answer.model_version
        response.product_ids.extend(answer.product_ids)
        response.product_names.extend(answer.product_names)
        response.product_names_ko.extend(answer.product_names_ko)
    errors.sort(key=lambda e: e.row)
    response.product_indices.extend(indices.ravel().tolist())
    response.scores.extend(scores.ravel().tolist())
    response.features.extend(prepared.all_features)
    response.errors.extend(errors)
    return response
