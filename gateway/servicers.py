"""The gateway's gRPC servicers (grpc.aio), kept thin: each method takes the decoded request,
calls its handler in gateway/handlers.py with the time left on the caller's deadline, and
returns. recommender.serving's wrappers turn every error into its status (one mapping,
recommender.errors, shared with the inference server) and count each call in the metrics."""

from __future__ import annotations

import grpc

from gateway import metrics
from gateway.handlers import Handlers
from recommender.serving import streaming, unary
from recommender.v1 import chat_pb2_grpc, metadata_pb2_grpc, recommend_pb2_grpc, vectorize_pb2_grpc

NO_DEADLINE_S = 86_400.0


def time_left(context) -> float | None:
    """Time left on the caller's deadline, handed to the next hop (None: no deadline).

    Without a client deadline gRPC reports the time left to an "infinite future" of ~2^63 ns,
    which overflows if passed on as a timeout: anything beyond a day means no deadline."""
    remaining = context.time_remaining()
    return None if remaining is None or remaining > NO_DEADLINE_S else remaining


class _Servicer:
    def __init__(self, handlers: Handlers):
        self.handlers = handlers

    def record(self, method: str, code: grpc.StatusCode, seconds: float) -> None:
        metrics.RPCS.labels(method, code.name).inc()
        metrics.RPC_LATENCY.labels(method).observe(seconds)


class VectorizeServicer(_Servicer, vectorize_pb2_grpc.VectorizeServiceServicer):
    @unary("Vectorize")
    async def Vectorize(self, request, context):
        return await self.handlers.vectorize(request, time_left(context))


class RecommendServicer(_Servicer, recommend_pb2_grpc.RecommendServiceServicer):
    @unary("Recommend")
    async def Recommend(self, request, context):
        return await self.handlers.recommend(request, time_left(context))

    @unary("RecommendBatch")
    async def RecommendBatch(self, request, context):
        return await self.handlers.recommend_batch(request, time_left(context))

    @streaming("RecommendStream")
    async def RecommendStream(self, request_iterator, context):
        async for response in self.handlers.recommend_stream(request_iterator, time_left(context)):
            yield response


class ChatServicer(_Servicer, chat_pb2_grpc.ChatServiceServicer):
    @unary("Chat")
    async def Chat(self, request, context):
        return await self.handlers.chat(request, time_left(context))


class MetadataServicer(_Servicer, metadata_pb2_grpc.MetadataServiceServicer):
    """What a call through this gateway is served with: the backend's models (gateway.metadata)."""

    @unary("GetMetadata")
    async def GetMetadata(self, request, context):
        return await self.handlers.metadata(time_left(context))
