"""RecommenderClient: the blocking client of the recommender services (gateway or inference server).

    with RecommenderClient("127.0.0.1:50051") as client:
        rec = client.recommend(text="30대 여성 운동용 30만원")
        print(rec.items[0].product_id, rec.items[0].score)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import grpc

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


class RecommenderClient:
    """Client for RecommendService, VectorizeService, ChatService and MetadataService at
    `target` ("host:port", or any gRPC target such as "dns:///name:50051").

    timeout        per-call deadline in seconds (streams: their own `timeout`, default none)
    tls            True: TLS with the system roots (or `ca_file`); None: TLS when a CA or a
                   client certificate is given
    ca_file        PEM file of the CA to trust; default $RECOMMENDER_CA
    client_cert_file, client_key_file   PEM client certificate and key (mutual TLS)
    token          bearer token sent as `authorization: Bearer …`; default $RECOMMENDER_TOKEN
    server_name    TLS name to expect when it differs from the target's host
    max_attempts   tries per call, retried on UNAVAILABLE with exponential backoff (1 = no retry)
    metadata       extra (key, value) pairs sent with every call

    Every call sends an `x-request-id` (the `request_id=` given, or a fresh one); results and
    errors carry the id the server returned (or the one sent) as `request_id`. A failed call
    raises a RecommenderError subclass (see recommender_client.errors)."""

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
            self._channel = grpc.insecure_channel(target, options=self.settings.options())
        else:
            self._channel = grpc.secure_channel(target, credentials, options=self.settings.options())
        self._recommend = recommend_pb2_grpc.RecommendServiceStub(self._channel)
        self._vectorize = vectorize_pb2_grpc.VectorizeServiceStub(self._channel)
        self._chat = chat_pb2_grpc.ChatServiceStub(self._channel)
        self._metadata = metadata_pb2_grpc.MetadataServiceStub(self._channel)

    # -- lifecycle

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until the channel is connected; Unavailable if it is not within `timeout`."""
        limit = timeout or self.timeout
        try:
            grpc.channel_ready_future(self._channel).result(timeout=limit)
        except grpc.FutureTimeoutError:
            raise Unavailable(grpc.StatusCode.UNAVAILABLE, f"cannot connect to {self.target} within {limit}s") from None

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> RecommenderClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- calls

    def _call(self, method, request, timeout: float | None, request_id: str | None):
        """(response, request id returned by the server or the one sent)."""
        sent_id, metadata = self.settings.call_metadata(request_id)
        try:
            response, call = method.with_call(request, timeout=self.timeout if timeout is None else timeout,
                                              metadata=metadata)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, sent_id) from None
        returned = metadata_value(call.trailing_metadata(), REQUEST_ID_KEY) or metadata_value(
            call.initial_metadata(), REQUEST_ID_KEY)
        return response, returned or sent_id

    def recommend(self, features: Sequence[float] | None = None, *, text: str | None = None,
                  top_k: int = 3, model_version: int = 0, timeout: float | None = None,
                  request_id: str | None = None) -> Recommendation:
        """Rank the catalog for one customer given as a 6-float vector or (gateway) text."""
        request = recommend_request(features, text, top_k, model_version)
        return Recommendation.from_pb(*self._call(self._recommend.Recommend, request, timeout, request_id))

    def recommend_batch(self, features=None, *, texts: Sequence[str] | None = None, top_k: int = 3,
                        model_version: int = 0, timeout: float | None = None,
                        request_id: str | None = None) -> BatchResult:
        """Rank the catalog for many customers in one call (N rows of 6 features, or N texts)."""
        request = batch_request(features, texts, top_k, model_version)
        return BatchResult.from_pb(*self._call(self._recommend.RecommendBatch, request, timeout, request_id))

    def recommend_stream(self, batches: Iterable, *, top_k: int = 3, model_version: int = 0,
                         timeout: float | None = None, request_id: str | None = None) -> Iterator[BatchResult]:
        """Stream batches (each N×6 features, a list of texts, or a RecommendBatchRequest) and
        yield one BatchResult per batch, in order. The input is consumed lazily as gRPC sends,
        so a generator that blocks bounds how much is in flight."""
        sent_id, metadata = self.settings.call_metadata(request_id)
        responses = self._recommend.RecommendStream(
            (stream_request(b, top_k, model_version) for b in batches), timeout=timeout, metadata=metadata)
        try:
            for reply in responses:
                yield BatchResult.from_pb(reply.batch, sent_id)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, sent_id) from None
        finally:
            responses.cancel()  # a consumer that stops early must not leave the stream open

    def vectorize(self, text: str, *, timeout: float | None = None,
                  request_id: str | None = None) -> Vectorized:
        """Text -> the 6-slot customer vector (gateway only)."""
        request = vectorize_pb2.VectorizeRequest(text=text)
        return Vectorized.from_pb(*self._call(self._vectorize.Vectorize, request, timeout, request_id))

    def chat(self, text: str, state: chat_pb2.ConversationState | None = None, top_k: int = 3, *,
             timeout: float | None = None, request_id: str | None = None) -> ChatTurn:
        """One chat turn (gateway only); pass the previous turn's `state` (None to start)."""
        request = chat_request(text, state, top_k)
        return ChatTurn.from_pb(*self._call(self._chat.Chat, request, timeout, request_id))

    def metadata(self, *, timeout: float | None = None, request_id: str | None = None) -> Metadata:
        """The loaded model versions and their state, the catalog, the schema version and the
        model signature; no scoring."""
        request = metadata_pb2.GetMetadataRequest()
        return Metadata.from_pb(*self._call(self._metadata.GetMetadata, request, timeout, request_id))
