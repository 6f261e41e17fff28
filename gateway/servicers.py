"""The gateway's gRPC servicers (grpc.aio), kept thin: parse the request, call the vectorizer /
the inference client / the chat engine, map errors to status codes, record metrics.

Error mapping (one place, `_status_of`):
  schema.InvalidText, schema.InvalidFeatures, ValueError (top_k, shapes) -> INVALID_ARGUMENT
  VectorizerUnavailable (Bedrock down and no fallback)                   -> UNAVAILABLE
  errors from the inference backend                                      -> their own code

Threading: handlers run on the event loop. The local vectorizer is sub-millisecond and runs
inline (a thread hop would cost more than it saves); Bedrock calls, batches of texts and chat
turns (plain synchronous code) run on the loop's thread pool.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import grpc

from gateway import conversions, metrics
from gateway.coalescing import RecommendCoalescer
from gateway.forwarding import InferenceClient, PreparedBatch, merge_batch, prepare_text_batch
from gateway.metadata import gateway_view
from gateway.vectorizers.base import LOCAL, Vectorizer, VectorizeResult, VectorizerUnavailable
from recommender import schema
from recommender.request_decoding import UndecodableRequest
from recommender.v1 import (
    chat_pb2_grpc,
    metadata_pb2_grpc,
    recommend_pb2,
    recommend_pb2_grpc,
    vectorize_pb2,
    vectorize_pb2_grpc,
)

log = logging.getLogger(__name__)

NO_DEADLINE_S = 86_400.0


class _Abort(Exception):
    """Internal: a status to end the call with (raised by domain glue, turned into abort)."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _status_of(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    if isinstance(exc, _Abort):
        return exc.code, exc.message
    if isinstance(exc, grpc.RpcError) and callable(getattr(exc, "code", None)):
        return exc.code(), exc.details() or exc.code().name
    if isinstance(exc, VectorizerUnavailable):
        return grpc.StatusCode.UNAVAILABLE, f"vectorizer unavailable and no fallback answered: {exc}"
    if isinstance(exc, ValueError):  # InvalidText, InvalidFeatures, top_k
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    return grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}"


def _log_failure(method: str, exc: Exception) -> tuple[grpc.StatusCode, str]:
    code, message = _status_of(exc)
    if code == grpc.StatusCode.INTERNAL:
        log.error("event=rpc_failed method=%s", method, exc_info=exc)
    else:
        level = logging.WARNING if code == grpc.StatusCode.UNAVAILABLE else logging.INFO
        log.log(level, "event=rpc_error method=%s code=%s message=%r", method, code.name, message)
    return code, message


def _record(method: str, code: grpc.StatusCode, started: float) -> None:
    metrics.RPCS.labels(method, code.name).inc()
    metrics.RPC_LATENCY.labels(method).observe(time.perf_counter() - started)


class _CallScope:
    """One RPC's bookkeeping around its handler: metrics by method and code, and domain errors
    turned into the call's status (shared by unary and streaming handlers)."""

    def __init__(self, method: str, context):
        self.method = method
        self.context = context
        self.code = grpc.StatusCode.OK
        self.started = time.perf_counter()

    async def __aenter__(self) -> _CallScope:
        return self

    async def __aexit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is not None and issubclass(exc_type, asyncio.CancelledError):
                self.code = grpc.StatusCode.CANCELLED
            elif (exc_type is not None and issubclass(exc_type, Exception)
                  and not issubclass(exc_type, grpc.aio.AbortError)):
                self.code, message = _log_failure(self.method, exc)
                await self.context.abort(self.code, message)  # raises AbortError
        finally:
            _record(self.method, self.code, self.started)
        return False


def unary(method: str):
    """Wrap a unary handler in a _CallScope; undecodable requests are INVALID_ARGUMENT."""

    def wrap(handler):
        @functools.wraps(handler)
        async def run(self, request, context):
            async with _CallScope(method, context):
                if isinstance(request, UndecodableRequest):
                    raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, request.describe())
                return await handler(self, request, context)
        return run
    return wrap


def streaming(method: str):
    """Same as `unary` for a response-streaming handler (an async generator)."""

    def wrap(handler):
        @functools.wraps(handler)
        async def run(self, request_iterator, context):
            async with _CallScope(method, context):
                async for response in handler(self, _decoded(request_iterator), context):
                    yield response
        return run
    return wrap


async def _decoded(request_iterator):
    """The stream's messages; an undecodable one ends the call with INVALID_ARGUMENT."""
    async for request in request_iterator:
        if isinstance(request, UndecodableRequest):
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, request.describe())
        yield request


def _timeout(context) -> float | None:
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


class _Blocking:
    """Runs synchronous domain code: inline for the local vectorizer, else on the pool."""

    def __init__(self, vectorizer: Vectorizer, pool: ThreadPoolExecutor):
        self.vectorizer = vectorizer
        self.pool = pool
        self.remote = getattr(vectorizer, "name", LOCAL) != LOCAL

    async def vectorize(self, text: str) -> VectorizeResult:
        if not self.remote:
            return _vectorize(self.vectorizer, text)
        return await asyncio.get_running_loop().run_in_executor(self.pool, _vectorize, self.vectorizer, text)

    async def run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)


# --------------------------------------------------------------------------- Vectorize


class VectorizeServicer(vectorize_pb2_grpc.VectorizeServiceServicer):
    def __init__(self, vectorizer: Vectorizer, pool: ThreadPoolExecutor):
        self.blocking = _Blocking(vectorizer, pool)

    @unary("Vectorize")
    async def Vectorize(self, request, context):
        result = await self.blocking.vectorize(request.text)
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
    def __init__(self, vectorizer: Vectorizer, inference: InferenceClient, pool: ThreadPoolExecutor,
                 text_pool: ThreadPoolExecutor, coalesce_in_flight: int = 1):
        self.vectorizer = vectorizer
        self.inference = inference
        self.blocking = _Blocking(vectorizer, pool)
        # A batch's texts: Bedrock calls wait on the network, so they overlap on their own
        # pool (not `pool`, which runs the batch itself: nesting there could deadlock).
        self.text_pool = text_pool if self.blocking.remote else None
        self.coalescer = RecommendCoalescer(inference, max_in_flight=coalesce_in_flight)

    @unary("Recommend")
    async def Recommend(self, request, context):
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
            result = await self.blocking.vectorize(request.text)
            features, vectorizer = result.features, result.vectorizer
        else:
            features = schema.validate_features(request.features)
        response = await self.coalescer.recommend(
            features, request.top_k, request.model_version, timeout=_timeout(context))
        response.vectorizer = conversions.vectorizer_enum(vectorizer)
        if not response.features:
            response.features.extend(features)
        if not response.HasField("slots"):
            response.slots.CopyFrom(conversions.slots_from_features(features))
        return response

    @unary("RecommendBatch")
    async def RecommendBatch(self, request, context):
        prepared = await self._prepare(request, index=None)
        if prepared is None:  # vectors: forwarded untouched, the backend checks each row
            return await self.inference.forward_batch(request, timeout=_timeout(context))
        answer = None
        if prepared.request is not None:
            answer = await self.inference.forward_batch(prepared.request, timeout=_timeout(context))
        return merge_batch(prepared, answer, conversions.vectorizer_enum(prepared.vectorizer))

    @streaming("RecommendStream")
    async def RecommendStream(self, request_iterator, context):
        """One backend stream per caller stream. Vector messages pass straight through; text
        messages are vectorized on the way out and their answers re-spread over the caller's
        rows on the way back. `pending` carries, in order, what each response needs."""
        pending: asyncio.Queue = asyncio.Queue()
        end = object()

        async def outgoing():
            try:
                index = 0
                async for message in request_iterator:
                    prepared = await self._prepare(message.batch, index=index)
                    index += 1
                    if prepared is None:
                        await pending.put(("forward", None))
                        yield message
                    elif prepared.request is None:
                        await pending.put(("local", prepared))  # no valid row: answered here
                    else:
                        await pending.put(("forward", prepared))
                        yield recommend_pb2.RecommendStreamRequest(batch=prepared.request)
            except Exception as exc:  # ends the backend stream; reported after earlier answers
                await pending.put(("error", exc))
            finally:
                await pending.put((end, None))

        call = self.inference.open_stream(outgoing(), timeout=_timeout(context))
        try:
            while True:
                kind, prepared = await pending.get()
                if kind is end:
                    return
                if kind == "error":
                    raise prepared
                if kind == "local":
                    yield recommend_pb2.RecommendStreamResponse(batch=merge_batch(
                        prepared, None, conversions.vectorizer_enum(prepared.vectorizer)))
                    continue
                try:
                    answer = await call.read()
                except grpc.RpcError as exc:
                    raise self.inference.explain(exc) from None
                if answer is grpc.aio.EOF:
                    code = await call.code()
                    if code != grpc.StatusCode.OK:
                        raise _Abort(code, await call.details())
                    raise _Abort(grpc.StatusCode.INTERNAL,
                                 "inference stream ended before answering every message")
                if prepared is None:
                    yield answer
                else:
                    yield recommend_pb2.RecommendStreamResponse(batch=merge_batch(
                        prepared, answer.batch, conversions.vectorizer_enum(prepared.vectorizer)))
        finally:
            call.cancel()  # no-op when finished; stops the backend when the caller left

    async def _prepare(self, request: recommend_pb2.RecommendBatchRequest,
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
            if count // schema.FEATURE_COUNT > schema.MAX_BATCH_ROWS:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT,
                             f"{where}at most {schema.MAX_BATCH_ROWS} rows per batch, "
                             f"got {count // schema.FEATURE_COUNT}; split it or use RecommendStream")
            return None
        if len(request.texts) > schema.MAX_BATCH_TEXTS:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT,
                         f"{where}at most {schema.MAX_BATCH_TEXTS} texts per batch, got {len(request.texts)}")
        # Off the event loop: up to 1,000 texts would stall every other call for a while.
        return await self.blocking.run(
            prepare_text_batch, list(request.texts), request.top_k, request.model_version,
            functools.partial(_vectorize, self.vectorizer), self.text_pool)


# --------------------------------------------------------------------------- Chat


class ChatServicer(chat_pb2_grpc.ChatServiceServicer):
    """One conversation turn: the dialogue engine does the talking, inference the scoring.
    The engine is plain synchronous code, so the turn runs on the pool and scores through
    the inference client's blocking bridge."""

    def __init__(self, engine, inference: InferenceClient, pool: ThreadPoolExecutor):
        self.engine = engine
        self.inference = inference
        self.pool = pool

    @unary("Chat")
    async def Chat(self, request, context):
        timeout = _timeout(context)
        deadline = None if timeout is None else time.monotonic() + timeout

        def recommend(features, top_k: int) -> recommend_pb2.RecommendResponse:
            left = None if deadline is None else deadline - time.monotonic()
            return self.inference.recommend_blocking(features, top_k, timeout=left)

        return await asyncio.get_running_loop().run_in_executor(
            self.pool, functools.partial(self.engine.turn, request, recommend=recommend))


# --------------------------------------------------------------------------- Metadata


class MetadataServicer(metadata_pb2_grpc.MetadataServiceServicer):
    """What a call through this gateway is served with: the backend's models (gateway.metadata)."""

    def __init__(self, inference: InferenceClient, vectorizer_name: str | None):
        self.inference = inference
        self.vectorizer_name = vectorizer_name

    @unary("GetMetadata")
    async def GetMetadata(self, request, context):
        backend = await self.inference.metadata(timeout=_timeout(context))
        return gateway_view(backend, self.vectorizer_name)
