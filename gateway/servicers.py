"""The gateway's gRPC servicers, kept thin: parse the request, call the vectorizer / the
inference client / the chat engine, map errors to status codes, record metrics.

Error mapping (one place, `_abort_for`):
  schema.InvalidText, schema.InvalidFeatures, ValueError (top_k, shapes) -> INVALID_ARGUMENT
  VectorizerUnavailable (Bedrock down and no fallback)                   -> UNAVAILABLE
  errors from the inference backend                                      -> their own code
"""

from __future__ import annotations

import functools
import logging
import queue
import time
from concurrent.futures import ThreadPoolExecutor

import grpc

from gateway import conversions, metrics
from gateway.forwarding import InferenceClient, PreparedBatch, merge_batch, prepare_text_batch
from gateway.vectorizers.base import LOCAL, Vectorizer, VectorizeResult, VectorizerUnavailable
from recommender import schema
from recommender.v1 import (
    chat_pb2_grpc,
    recommend_pb2,
    recommend_pb2_grpc,
    vectorize_pb2,
    vectorize_pb2_grpc,
)

log = logging.getLogger(__name__)

MAX_BATCH_ROWS = 10_000
MAX_BATCH_TEXTS = 1_000
NO_DEADLINE_S = 86_400.0


class _Abort(Exception):
    """Internal: a status to end the call with (raised by domain glue, turned into abort)."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _status_of(exc: BaseException) -> tuple[grpc.StatusCode, str] | None:
    if isinstance(exc, _Abort):
        return exc.code, exc.message
    if isinstance(exc, grpc.RpcError) and callable(getattr(exc, "code", None)):
        return exc.code(), exc.details() or exc.code().name
    if isinstance(exc, VectorizerUnavailable):
        return grpc.StatusCode.UNAVAILABLE, f"vectorizer unavailable and no fallback answered: {exc}"
    if isinstance(exc, ValueError):  # InvalidText, InvalidFeatures, top_k
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    return None


def _abort_for(context: grpc.ServicerContext, method: str, exc: BaseException):
    status = _status_of(exc)
    if status is None:
        log.exception("event=rpc_failed method=%s", method)
        context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method}: {type(exc).__name__}")
    code, message = status
    level = logging.WARNING if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL) else logging.INFO
    log.log(level, "event=rpc_error method=%s code=%s message=%r", method, code.name, message)
    context.abort(code, message)


def _record(method: str, context: grpc.ServicerContext, started: float) -> None:
    code = context.code() if hasattr(context, "code") else None
    metrics.RPCS.labels(method, (code or grpc.StatusCode.OK).name).inc()
    metrics.RPC_LATENCY.labels(method).observe(time.perf_counter() - started)


def unary(method: str):
    """Wrap a unary handler: metrics by method and code, domain errors -> status codes."""

    def wrap(handler):
        @functools.wraps(handler)
        def run(self, request, context):
            started = time.perf_counter()
            try:
                return handler(self, request, context)
            except Exception as exc:
                if _is_abort(context):
                    raise
                _abort_for(context, method, exc)
            finally:
                _record(method, context, started)
        return run
    return wrap


def streaming(method: str):
    """Same as `unary` for a response-streaming handler (a generator)."""

    def wrap(handler):
        @functools.wraps(handler)
        def run(self, request_iterator, context):
            started = time.perf_counter()
            try:
                yield from handler(self, request_iterator, context)
            except Exception as exc:
                if _is_abort(context):
                    raise
                _abort_for(context, method, exc)
            finally:
                _record(method, context, started)
        return run
    return wrap


def _is_abort(context: grpc.ServicerContext) -> bool:
    """True when context.abort already ran (its exception must propagate untouched)."""
    code = context.code() if hasattr(context, "code") else None
    return code is not None and code != grpc.StatusCode.OK


def _timeout(context: grpc.ServicerContext) -> float | None:
    """Time left on the caller's deadline, handed to the next hop (None: no deadline).

    Without a client deadline gRPC reports the time left to an "infinite future" of ~2^63 ns,
    which overflows if passed on as a timeout: anything beyond a day means no deadline."""
    remaining = context.time_remaining()
    return None if remaining is None or remaining > NO_DEADLINE_S else remaining


def _vectorize(vectorizer: Vectorizer, text: str) -> VectorizeResult:
    return vectorizer.vectorize(schema.validate_text(text))


class CountingVectorizer:
    """The served vectorizer, counting every text by the vectorizer that answered (so the
    chat engine's turns are counted like Vectorize and Recommend calls)."""

    def __init__(self, inner: Vectorizer):
        self.inner = inner
        self.name = inner.name

    def vectorize(self, text: str) -> VectorizeResult:
        result = self.inner.vectorize(text)
        metrics.VECTORIZED.labels(result.vectorizer).inc()
        return result


# --------------------------------------------------------------------------- Vectorize


class VectorizeServicer(vectorize_pb2_grpc.VectorizeServiceServicer):
    def __init__(self, vectorizer: Vectorizer):
        self.vectorizer = vectorizer

    @unary("Vectorize")
    def Vectorize(self, request, context):
        result = _vectorize(self.vectorizer, request.text)
        log.debug("event=vectorized vectorizer=%s language=%s text=%r",
                  result.vectorizer, result.language, request.text)
        return vectorize_pb2.VectorizeResponse(
            features=result.features,
            slots=conversions.slots_from_features(result.features),
            unstated_slots=conversions.unstated_slot_enums(result.features),
            vectorizer=conversions.vectorizer_enum(result.vectorizer),
            language=result.language,
        )


# --------------------------------------------------------------------------- Recommend


class RecommendServicer(recommend_pb2_grpc.RecommendServiceServicer):
    def __init__(self, vectorizer: Vectorizer, inference: InferenceClient,
                 text_pool: ThreadPoolExecutor | None = None):
        self.vectorizer = vectorizer
        self.inference = inference
        # Remote vectorizers spend their time waiting on the network: a batch's texts go
        # through a small pool. The local one is CPU-bound and sub-millisecond: inline.
        remote = getattr(vectorizer, "name", LOCAL) != LOCAL
        self.text_pool = text_pool if remote else None

    @unary("Recommend")
    def Recommend(self, request, context):
        has_features, has_text = len(request.features) > 0, bool(request.text)
        if has_features and has_text:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT,
                         "set exactly one of features (6 floats) and text, got both")
        if not has_features and not has_text:  # proto3 cannot tell empty text from no text
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT,
                         "text must not be empty (or send features: 6 floats instead)")
        schema.resolve_top_k(request.top_k)
        vectorizer = ""
        if has_text:
            result = _vectorize(self.vectorizer, request.text)
            features, vectorizer = result.features, result.vectorizer
        else:
            features = schema.validate_features(request.features)
        response = self.inference.recommend(
            features, request.top_k, request.model_version, timeout=_timeout(context))
        response.vectorizer = conversions.vectorizer_enum(vectorizer)
        if not response.features:
            response.features.extend(features)
        if not response.HasField("slots"):
            response.slots.CopyFrom(conversions.slots_from_features(features))
        return response

    @unary("RecommendBatch")
    def RecommendBatch(self, request, context):
        prepared = self._prepare(request, index=None)
        if prepared is None:  # vectors: forwarded untouched, the backend checks each row
            return self.inference.forward_batch(request, timeout=_timeout(context))
        answer = None
        if prepared.request is not None:
            answer = self.inference.forward_batch(prepared.request, timeout=_timeout(context))
        return merge_batch(prepared, answer, conversions.vectorizer_enum(prepared.vectorizer))

    @streaming("RecommendStream")
    def RecommendStream(self, request_iterator, context):
        """One backend stream per caller stream. Vector messages pass straight through; text
        messages are vectorized on the way out and their answers re-spread over the caller's
        rows on the way back. `pending` carries, in order, what each response needs."""
        pending: queue.Queue = queue.Queue()
        end = object()

        def outgoing():
            try:
                for index, message in enumerate(request_iterator):
                    prepared = self._prepare(message, index=index)
                    if prepared is None:
                        pending.put(("forward", None))
                        yield message
                    elif prepared.request is None:
                        pending.put(("local", prepared))  # no valid row: answered here
                    else:
                        pending.put(("forward", prepared))
                        yield prepared.request
            except Exception as exc:  # ends the backend stream; reported after earlier answers
                pending.put(("error", exc))
            finally:
                pending.put((end, None))

        call = self.inference.open_stream(outgoing(), timeout=_timeout(context))
        context.add_callback(call.cancel)
        while True:
            try:
                kind, prepared = pending.get(timeout=0.5)
            except queue.Empty:
                if not context.is_active():
                    return
                if call.done() and call.code() != grpc.StatusCode.OK:
                    raise self.inference.explain(call) from None
                continue
            if kind is end:
                return
            if kind == "error":
                raise prepared
            if kind == "local":
                yield merge_batch(prepared, None, conversions.vectorizer_enum(prepared.vectorizer))
                continue
            try:
                answer = next(call)
            except grpc.RpcError as exc:
                raise self.inference.explain(exc) from None
            except StopIteration:
                raise _Abort(grpc.StatusCode.INTERNAL,
                             "inference stream ended before answering every message") from None
            if prepared is None:
                yield answer
            else:
                yield merge_batch(prepared, answer, conversions.vectorizer_enum(prepared.vectorizer))

    def _prepare(self, request: recommend_pb2.RecommendBatchRequest,
                 index: int | None) -> PreparedBatch | None:
        """Check a batch message; vectorize it when it carries texts (None: vectors only)."""
        where = "" if index is None else f"stream message {index}: "
        has_features, has_texts = len(request.features) > 0, len(request.texts) > 0
        if has_features == has_texts:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT,
                         f"{where}set exactly one of features (N*6 floats) and texts, "
                         f"got {'both' if has_features else 'neither'}")
        try:
            schema.resolve_top_k(request.top_k)
        except ValueError as exc:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"{where}{exc}") from None
        if has_features:
            count = len(request.features)
            if count % schema.FEATURE_COUNT:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT,
                             f"{where}features must hold N*{schema.FEATURE_COUNT} floats "
                             f"(rows of {', '.join(schema.SLOT_NAMES)}), got {count}")
            if count // schema.FEATURE_COUNT > MAX_BATCH_ROWS:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT,
                             f"{where}at most {MAX_BATCH_ROWS} rows per batch, "
                             f"got {count // schema.FEATURE_COUNT}; split it or use RecommendStream")
            return None
        if len(request.texts) > MAX_BATCH_TEXTS:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT,
                         f"{where}at most {MAX_BATCH_TEXTS} texts per batch, got {len(request.texts)}")
        return prepare_text_batch(request.texts, request.top_k, request.model_version,
                                  lambda text: _vectorize(self.vectorizer, text), self.text_pool)


# --------------------------------------------------------------------------- Chat


class ChatServicer(chat_pb2_grpc.ChatServiceServicer):
    """One conversation turn: the dialogue engine does the talking, inference the scoring."""

    def __init__(self, engine, inference: InferenceClient):
        self.engine = engine
        self.inference = inference

    @unary("Chat")
    def Chat(self, request, context):
        def recommend(features, top_k: int) -> recommend_pb2.RecommendResponse:
            return self.inference.recommend(features, top_k, timeout=_timeout(context))

        return self.engine.turn(request, recommend=recommend)

