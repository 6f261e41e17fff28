"""A small typed Python client for the recommender services (inference server or gateway).

    with RecommenderClient("127.0.0.1:50051") as client:
        rec = client.recommend(text="30대 여성 운동용 30만원")
        print(rec.items[0].product_id, rec.items[0].score)

Every call has a deadline (`timeout`, seconds), channels are plaintext or TLS, and a failed
call raises a RecommenderError subclass that keeps the gRPC status code and message.
Imports only grpc, numpy and the generated stubs (never TensorFlow).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import grpc
import numpy as np

from recommender import schema
from recommender.v1 import (
    chat_pb2,
    chat_pb2_grpc,
    common_pb2,
    recommend_pb2,
    recommend_pb2_grpc,
    vectorize_pb2,
    vectorize_pb2_grpc,
)

# Batches of 10,000 rows are about 1 MB each way; leave headroom over gRPC's 4 MB default.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


# --------------------------------------------------------------------------- errors


class RecommenderError(Exception):
    """A failed call. `code` is the grpc.StatusCode, `details` the server's message."""

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class InvalidArgument(RecommenderError):
    """The request broke the contract (bad vector, text, top_k); fix the input."""


class Unavailable(RecommenderError):
    """The server (or the gateway's backend) cannot answer right now; retry later."""


class DeadlineExceeded(RecommenderError):
    """The call did not finish within its timeout."""


class NotFound(RecommenderError):
    """A requested model version is not loaded."""


class Unimplemented(RecommenderError):
    """The server does not offer this method (e.g. Chat on the inference server)."""


class ResourceExhausted(RecommenderError):
    """The server is overloaded or the message is too large."""


_ERROR_CLASSES: dict[grpc.StatusCode, type[RecommenderError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.UNIMPLEMENTED: Unimplemented,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
}


def error_from_rpc(exc: grpc.RpcError) -> RecommenderError:
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = (exc.details() if hasattr(exc, "details") else None) or str(exc)
    return _ERROR_CLASSES.get(code, RecommenderError)(code, details)


# --------------------------------------------------------------------------- results


def _vectorizer_name(value: int) -> str:
    """recommender.v1.Vectorizer -> 'local', 'bedrock_converse', ... ('' when unspecified)."""
    if value == common_pb2.VECTORIZER_UNSPECIFIED:
        return ""
    return common_pb2.Vectorizer.Name(value).removeprefix("VECTORIZER_").lower()


def _slot_name(value: int) -> str:
    if value == common_pb2.SLOT_UNSPECIFIED:
        return ""
    return common_pb2.Slot.Name(value).removeprefix("SLOT_").lower()


@dataclass(frozen=True)
class Item:
    rank: int
    product_id: str
    name: str
    name_ko: str
    score: float

    @classmethod
    def from_pb(cls, item: common_pb2.RecommendedItem) -> Item:
        return cls(item.rank, item.product_id, item.name, item.name_ko, float(item.score))

    def display_name(self, language: str = "en") -> str:
        return (self.name_ko if language == "ko" else self.name) or self.name or self.product_id


@dataclass(frozen=True)
class Recommendation:
    items: tuple[Item, ...]
    model_version: int
    features: tuple[float, ...]
    vectorizer: str  # '' when features were sent


@dataclass(frozen=True)
class Vectorized:
    features: tuple[float, ...]
    slots: dict[str, float]  # slot name -> value, contract order
    unstated: tuple[str, ...]
    vectorizer: str
    language: str


@dataclass(frozen=True)
class BatchResult:
    """One scored batch. Rows that could not be scored have indices -1, scores 0 and an
    entry in `errors` (row -> message)."""

    model_version: int
    top_k: int
    rows: int
    catalog: tuple[str, ...]  # product ids in class order
    indices: np.ndarray  # int32 (rows, top_k)
    scores: np.ndarray  # float32 (rows, top_k)
    features: np.ndarray  # float32 (rows, 6)
    errors: dict[int, str] = field(default_factory=dict)
    vectorizer: str = ""

    @classmethod
    def from_pb(cls, reply: recommend_pb2.RecommendBatchResponse) -> BatchResult:
        rows, k = reply.rows, reply.top_k
        return cls(
            model_version=reply.model_version,
            top_k=k,
            rows=rows,
            catalog=tuple(reply.product_ids),
            indices=np.asarray(reply.product_indices, dtype=np.int32).reshape(rows, k),
            scores=np.asarray(reply.scores, dtype=np.float32).reshape(rows, k),
            features=np.asarray(reply.features, dtype=np.float32).reshape(rows, schema.FEATURE_COUNT)
            if len(reply.features) else np.zeros((rows, schema.FEATURE_COUNT), np.float32),
            errors={e.row: e.message for e in reply.errors},
            vectorizer=_vectorizer_name(reply.vectorizer),
        )

    def product_ids(self, row: int) -> list[str]:
        """Best-first product ids of one row ([] for a row that failed)."""
        return [self.catalog[i] for i in self.indices[row] if i >= 0]


@dataclass(frozen=True)
class ChatTurn:
    reply: str
    state: chat_pb2.ConversationState  # send it back with the next turn
    items: tuple[Item, ...]
    understood: dict[str, float]
    follow_up: str  # slot name the bot asked about, '' when none
    model_version: int
    vectorizer: str

    @property
    def language(self) -> str:
        return self.state.language


def _slots_dict(slots: common_pb2.CustomerSlots) -> dict[str, float]:
    return {name: float(getattr(slots, name)) for name in schema.SLOT_NAMES}


# --------------------------------------------------------------------------- requests


def _features_matrix(features) -> np.ndarray:
    matrix = np.asarray(features, dtype=np.float32)
    if matrix.ndim == 1 and matrix.size % schema.FEATURE_COUNT == 0:
        matrix = matrix.reshape(-1, schema.FEATURE_COUNT)
    if matrix.ndim != 2 or matrix.shape[1] != schema.FEATURE_COUNT:
        raise ValueError(f"features must be N rows of {schema.FEATURE_COUNT} values, got shape {matrix.shape}")
    return matrix


def batch_request(features=None, texts: Sequence[str] | None = None, top_k: int = 3,
                  model_version: int = 0) -> recommend_pb2.RecommendBatchRequest:
    """A RecommendBatchRequest from an N×6 array-like or a list of texts (exactly one)."""
    if (features is None) == (texts is None):
        raise ValueError("pass exactly one of features= and texts=")
    request = recommend_pb2.RecommendBatchRequest(top_k=top_k, model_version=model_version)
    if features is not None:
        request.features.extend(_features_matrix(features).ravel().tolist())
    else:
        request.texts.extend(texts)
    return request


class RecommenderClient:
    """Client for RecommendService, VectorizeService and ChatService at `target` (host:port).

    `timeout` is the per-call deadline in seconds (streams take their own, default none).
    `tls=True` uses TLS with the system roots or `root_certificates` (PEM bytes)."""

    def __init__(self, target: str, *, timeout: float = 5.0, tls: bool = False,
                 root_certificates: bytes | None = None):
        self.target = target
        self.timeout = timeout
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
        if tls:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self._channel = grpc.secure_channel(target, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(target, options=options)
        self._recommend = recommend_pb2_grpc.RecommendServiceStub(self._channel)
        self._vectorize = vectorize_pb2_grpc.VectorizeServiceStub(self._channel)
        self._chat = chat_pb2_grpc.ChatServiceStub(self._channel)

    # -- lifecycle

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until the channel is connected; Unavailable if it is not within `timeout`."""
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout or self.timeout)
        except grpc.FutureTimeoutError:
            raise Unavailable(grpc.StatusCode.UNAVAILABLE,
                              f"cannot connect to {self.target} within {timeout or self.timeout}s") from None

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> RecommenderClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- calls

    def _call(self, method, request, timeout: float | None):
        try:
            return method(request, timeout=self.timeout if timeout is None else timeout)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from None

    def recommend(self, features: Sequence[float] | None = None, *, text: str | None = None,
                  top_k: int = 3, model_version: int = 0, timeout: float | None = None) -> Recommendation:
        """Rank the catalog for one customer given as a 6-float vector or (gateway) text."""
        if (features is None) == (text is None):
            raise ValueError("pass exactly one of features= and text=")
        request = recommend_pb2.RecommendRequest(top_k=top_k, model_version=model_version)
        if features is not None:
            request.features.extend(float(v) for v in features)
        else:
            request.text = text
        reply = self._call(self._recommend.Recommend, request, timeout)
        return Recommendation(
            items=tuple(Item.from_pb(i) for i in reply.items),
            model_version=reply.model_version,
            features=tuple(reply.features),
            vectorizer=_vectorizer_name(reply.vectorizer),
        )

    def recommend_batch(self, features=None, *, texts: Sequence[str] | None = None, top_k: int = 3,
                        model_version: int = 0, timeout: float | None = None) -> BatchResult:
        """Rank the catalog for many customers in one call (N×6 features or N texts)."""
        request = batch_request(features, texts, top_k, model_version)
        return BatchResult.from_pb(self._call(self._recommend.RecommendBatch, request, timeout))

    def recommend_stream(self, batches: Iterable, *, top_k: int = 3, model_version: int = 0,
                         timeout: float | None = None) -> Iterator[BatchResult]:
        """Stream batches (each an N×6 array-like, a list of texts, or a ready
        RecommendBatchRequest) and yield one BatchResult per batch, in order.

        The input iterable is consumed lazily by gRPC as it sends, so a generator that blocks
        bounds how much is in flight."""

        def requests():
            for batch in batches:
                if isinstance(batch, recommend_pb2.RecommendBatchRequest):
                    request = batch
                elif len(batch) and isinstance(batch[0], str):
                    request = batch_request(texts=batch, top_k=top_k, model_version=model_version)
                else:
                    request = batch_request(batch, top_k=top_k, model_version=model_version)
                yield recommend_pb2.RecommendStreamRequest(batch=request)

        responses = self._recommend.RecommendStream(requests(), timeout=timeout)
        try:
            for reply in responses:
                yield BatchResult.from_pb(reply.batch)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from None
        finally:
            responses.cancel()  # a consumer that stops early must not leave the stream open

    def vectorize(self, text: str, *, timeout: float | None = None) -> Vectorized:
        reply = self._call(self._vectorize.Vectorize, vectorize_pb2.VectorizeRequest(text=text), timeout)
        return Vectorized(
            features=tuple(reply.features),
            slots=_slots_dict(reply.slots),
            unstated=tuple(_slot_name(s) for s in reply.unstated_slots),
            vectorizer=_vectorizer_name(reply.vectorizer),
            language=reply.language,
        )

    def chat(self, text: str, state: chat_pb2.ConversationState | None = None, top_k: int = 3,
             *, timeout: float | None = None) -> ChatTurn:
        """One chat turn; pass the previous turn's `state` (None for a new conversation)."""
        request = chat_pb2.ChatRequest(text=text, state=state or chat_pb2.ConversationState(), top_k=top_k)
        reply = self._call(self._chat.Chat, request, timeout)
        return ChatTurn(
            reply=reply.reply,
            state=reply.state,
            items=tuple(Item.from_pb(i) for i in reply.items),
            understood=_slots_dict(reply.understood),
            follow_up=_slot_name(reply.follow_up),
            model_version=reply.model_version,
            vectorizer=_vectorizer_name(reply.vectorizer),
        )
