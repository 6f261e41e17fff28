"""AsyncRecommenderClient: the asyncio (grpc.aio) client, same calls and options as
RecommenderClient, each a coroutine; recommend_stream is an async generator.

    async with AsyncRecommenderClient("127.0.0.1:50051") as client:
        rec = await client.recommend(features=[35, 1, 300000, 2, 1, 0])
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import grpc
import grpc.aio

from recommender.v1 import (
    chat_pb2,
    chat_pb2_grpc,
    metadata_pb2,
    metadata_pb2_grpc,
    recommend_pb2_grpc,
    vectorize_pb2,
    vectorize_pb2_grpc,
)

from ._channel import ChannelSettings
from .errors import REQUEST_ID_KEY, Unavailable, error_from_rpc, metadata_value
from .results import (
    BatchResult,
    ChatTurn,
    Metadata,
    Recommendation,
    Vectorized,
    batch_request,
    chat_request,
    recommend_request,
    stream_request,
)


class AsyncRecommenderClient:
    """The asyncio client; the options are RecommenderClient's. Create it inside a running
    event loop (grpc.aio channels belong to the loop they are made in)."""

    def __init__(self, target: str, *, timeout: float = 5.0, tls: bool | None = None,
                 ca_file: str | None = None, root_certificates: bytes | None = None,
                 client_cert_file: str | None = None, client_key_file: str | None = None,
                 token: str | None = None, server_name: str | None = None, max_attempts: int = 4,
                 metadata: Sequence[tuple[str, str]] = ()):
        self.target = target
        self.timeout = timeout
        self.settings = ChannelSettings.build(
            target, tls=tls, ca_file=ca_file, root_certificates=root_certificates,
            client_cert_file=client_cert_file, client_key_file=client_key_file, token=token,
            server_name=server_name, max_attempts=max_attempts, metadata=metadata)
        credentials = self.settings.credentials()
        if credentials is None:
            self._channel = grpc.aio.insecure_channel(target, options=self.settings.options())
        else:
            self._channel = grpc.aio.secure_channel(target, credentials, options=self.settings.options())
        self._recommend = recommend_pb2_grpc.RecommendServiceStub(self._channel)
        self._vectorize = vectorize_pb2_grpc.VectorizeServiceStub(self._channel)
        self._chat = chat_pb2_grpc.ChatServiceStub(self._channel)
        self._metadata = metadata_pb2_grpc.MetadataServiceStub(self._channel)

    # -- lifecycle

    async def wait_ready(self, timeout: float | None = None) -> None:
        limit = timeout or self.timeout
        try:
            await asyncio.wait_for(self._channel.channel_ready(), limit)
        except asyncio.TimeoutError:
            raise Unavailable(grpc.StatusCode.UNAVAILABLE, f"cannot connect to {self.target} within {limit}s") from None

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncRecommenderClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # -- calls

    async def _call(self, method, request, timeout: float | None, request_id: str | None):
        sent_id, metadata = self.settings.call_metadata(request_id)
        call = method(request, timeout=self.timeout if timeout is None else timeout, metadata=metadata)
        try:
            response = await call
            trailing = await call.trailing_metadata()
            initial = await call.initial_metadata()
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, sent_id) from None
        returned = metadata_value(trailing, REQUEST_ID_KEY) or metadata_value(initial, REQUEST_ID_KEY)
        return response, returned or sent_id

    async def recommend(self, features: Sequence[float] | None = None, *, text: str | None = None,
                        top_k: int = 3, model_version: int = 0, timeout: float | None = None,
                        request_id: str | None = None) -> Recommendation:
        request = recommend_request(features, text, top_k, model_version)
        return Recommendation.from_pb(*await self._call(self._recommend.Recommend, request, timeout, request_id))

    async def recommend_batch(self, features=None, *, texts: Sequence[str] | None = None, top_k: int = 3,
                              model_version: int = 0, timeout: float | None = None,
                              request_id: str | None = None) -> BatchResult:
        request = batch_request(features, texts, top_k, model_version)
        return BatchResult.from_pb(*await self._call(self._recommend.RecommendBatch, request, timeout, request_id))

    async def recommend_stream(self, batches, *, top_k: int = 3, model_version: int = 0,
                               timeout: float | None = None,
                               request_id: str | None = None) -> AsyncIterator[BatchResult]:
        """Batches from an iterable or an async iterable; one BatchResult per batch, in order."""

        async def requests():
            if hasattr(batches, "__aiter__"):
                async for batch in batches:
                    yield stream_request(batch, top_k, model_version)
            else:
                for batch in batches:
                    yield stream_request(batch, top_k, model_version)

        sent_id, metadata = self.settings.call_metadata(request_id)
        call = self._recommend.RecommendStream(requests(), timeout=timeout, metadata=metadata)
        try:
            async for reply in call:
                yield BatchResult.from_pb(reply.batch, sent_id)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, sent_id) from None
        finally:
            call.cancel()

    async def vectorize(self, text: str, *, timeout: float | None = None,
                        request_id: str | None = None) -> Vectorized:
        request = vectorize_pb2.VectorizeRequest(text=text)
        return Vectorized.from_pb(*await self._call(self._vectorize.Vectorize, request, timeout, request_id))

    async def chat(self, text: str, state: chat_pb2.ConversationState | None = None, top_k: int = 3, *,
                   timeout: float | None = None, request_id: str | None = None) -> ChatTurn:
        request = chat_request(text, state, top_k)
        return ChatTurn.from_pb(*await self._call(self._chat.Chat, request, timeout, request_id))

    async def metadata(self, *, timeout: float | None = None, request_id: str | None = None) -> Metadata:
        request = metadata_pb2.GetMetadataRequest()
        return Metadata.from_pb(*await self._call(self._metadata.GetMetadata, request, timeout, request_id))
