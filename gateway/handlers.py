"""What the gateway does for each RPC, as plain async functions over plain objects (the
vectorizer, the inference backend, the chat engine): no grpc context here, errors are
recommender.errors. gateway/servicers.py calls these and maps the errors to statuses.

Threads: everything runs on the event loop. The local vectorizer is sub-millisecond and runs
inline (a thread hop would cost more than it saves); only Bedrock calls and the vectorizing of
a batch of texts go to the thread pool. A chat turn reads its text (inline, or on the pool for
Bedrock), scores on the loop and answers inline: at most one hop there and back.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import grpc

from gateway import conversions, metrics
from gateway.backend import InferenceBackend
from gateway.batches import PreparedBatch, merge_batch, prepare_text_batch
from gateway.coalescing import RecommendCoalescer
from gateway.vectorizers import deadlines
from gateway.vectorizers.base import LOCAL, Vectorizer, VectorizeResult, VectorizerUnavailable
from recommender import errors, request_ids, schema
from recommender.v1 import chat_pb2, metadata_pb2, recommend_pb2, vectorize_pb2

log = logging.getLogger(__name__)


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


def _vectorize(vectorizer: Vectorizer, text: str) -> VectorizeResult:
    try:
        return vectorizer.vectorize(schema.validate_text(text))
    except VectorizerUnavailable as exc:
        raise errors.Unavailable(f"vectorizer unavailable and no fallback answered: {exc}") from None


class Handlers:
    """The gateway's RPCs. `coalescer` None: every Recommend is its own call to inference."""

    def __init__(self, vectorizer: Vectorizer, backend: InferenceBackend, chat_engine,
                 pool: ThreadPoolExecutor, text_pool: ThreadPoolExecutor,
                 coalescer: RecommendCoalescer | None = None):
        self.vectorizer = vectorizer
        self.backend = backend
        self.chat_engine = chat_engine
        self.pool = pool
        self.remote = getattr(vectorizer, "name", LOCAL) != LOCAL
        # A batch's texts: Bedrock calls wait on the network, so they overlap on their own
        # pool (not `pool`, which runs the batch itself: nesting there could deadlock).
        self.text_pool = text_pool if self.remote else None
        self.coalescer = coalescer

    async def _off_loop(self, fn, *args):
        # run_in_executor does not carry the call's context: propagate it, so log lines
        # written on the pool keep the caller and request id.
        return await asyncio.get_running_loop().run_in_executor(self.pool, request_ids.propagate(fn), *args)

    async def vectorize_text(self, text: str, timeout: float | None = None) -> VectorizeResult:
        # The caller's deadline bounds a Bedrock call (its read timeouts and retries).
        with deadlines.within(timeout):
            if not self.remote:
                return _vectorize(self.vectorizer, text)
            return await self._off_loop(_vectorize, self.vectorizer, text)

    # ------------------------------------------------------------------ Vectorize

    async def vectorize(self, request: vectorize_pb2.VectorizeRequest,
                        timeout: float | None = None) -> vectorize_pb2.VectorizeResponse:
        result = await self.vectorize_text(request.text, timeout)
        log.debug("event=vectorized vectorizer=%s language=%s text=%r",
                  result.vectorizer, result.language, request.text)
        return vectorize_pb2.VectorizeResponse(
            features=result.features,
            slots=conversions.slots_from_features(result.features),
            unstated_slots=conversions.unstated_slot_enums(result.features),
            vectorizer=conversions.vectorizer_enum(result.vectorizer),
            language=result.language,
        )

    # ------------------------------------------------------------------ Recommend

    async def recommend(self, request: recommend_pb2.RecommendRequest,
                        timeout: float | None) -> recommend_pb2.RecommendResponse:
        has_features, has_text = len(request.features) > 0, bool(request.text)
        if has_features and has_text:
            raise errors.InvalidArgument("set exactly one of features (6 floats) and text, got both",
                                         field="text")
        if not has_features and not has_text:  # proto3 cannot tell empty text from no text
            raise errors.InvalidArgument("text must not be empty (or send features: 6 floats instead)",
                                         field="text")
        schema.resolve_top_k(request.top_k)
        vectorizer = ""
        if has_text:
            result = await self.vectorize_text(request.text, timeout)
            features, vectorizer = result.features, result.vectorizer
        else:
            features = schema.validate_features(request.features)
        if self.coalescer is not None:
            response = await self.coalescer.recommend(features, request.top_k, request.model_version, timeout)
        else:
            response = await self.backend.recommend(recommend_pb2.RecommendRequest(
                features=features, top_k=request.top_k, model_version=request.model_version), timeout)
        response.vectorizer = conversions.vectorizer_enum(vectorizer)
        return response

    async def recommend_batch(self, request: recommend_pb2.RecommendBatchRequest,
                              timeout: float | None) -> recommend_pb2.RecommendBatchResponse:
        with deadlines.within(timeout):  # bounds the Bedrock calls of a batch of texts
            prepared = await self.prepare(request)
        if prepared is None:  # vectors: forwarded untouched, the backend checks each row
            return await self.backend.recommend_batch(request, timeout)
        answer = None
        if prepared.request is not None:
            answer = await self.backend.recommend_batch(prepared.request, timeout)
        return merge_batch(prepared, answer, conversions.vectorizer_enum(prepared.vectorizer))

    async def recommend_stream(self, requests: AsyncIterator[recommend_pb2.RecommendStreamRequest],
                               timeout: float | None) -> AsyncIterator[recommend_pb2.RecommendStreamResponse]:
        """One backend stream per caller stream. Vector messages pass straight through; text
        messages are vectorized on the way out and their answers re-spread over the caller's
        rows on the way back. `pending` carries, in order, what each response needs."""
        pending: asyncio.Queue = asyncio.Queue()
        end = object()

        async def outgoing():
            try:
                index = 0
                async for message in requests:
                    try:
                        prepared = await self.prepare(message.batch)
                    except errors.ServiceError as exc:
                        raise exc.prefixed(f"stream message {index}: ") from None
                    index += 1
                    if prepared is None:
                        await pending.put(("forward", None))
                        yield message
                    elif prepared.request is None:
                        await pending.put(("local", prepared))  # no valid row: answered here
                    else:
                        await pending.put(("forward", prepared))
                        yield recommend_pb2.RecommendStreamRequest(batch=prepared.request)
            except Exception as exc:  # noqa: BLE001 - ends the backend stream; reported after earlier answers
                await pending.put(("error", exc))
            finally:
                await pending.put((end, None))

        call = self.backend.open_stream(outgoing(), timeout)
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
                    raise self.backend.stream_error(exc) from None
                if answer is grpc.aio.EOF:
                    code = await call.code()
                    if code != grpc.StatusCode.OK:
                        raise errors.BackendError(code, await call.details())
                    raise errors.ServiceError("inference stream ended before answering every message")
                if prepared is None:
                    yield answer
                else:
                    yield recommend_pb2.RecommendStreamResponse(batch=merge_batch(
                        prepared, answer.batch, conversions.vectorizer_enum(prepared.vectorizer)))
        finally:
            call.cancel()  # no-op when finished; stops the backend when the caller left

    async def prepare(self, request: recommend_pb2.RecommendBatchRequest) -> PreparedBatch | None:
        """Check a batch message; vectorize it when it carries texts (None: vectors only)."""
        has_features, has_texts = len(request.features) > 0, len(request.texts) > 0
        if has_features == has_texts:
            raise errors.InvalidArgument(
                "set exactly one of features (N*6 floats) and texts, "
                f"got {'both' if has_features else 'neither'}", field="features")
        schema.resolve_top_k(request.top_k)
        if has_features:
            count = len(request.features)
            if count % schema.FEATURE_COUNT:
                raise errors.InvalidArgument(
                    f"features must hold N*{schema.FEATURE_COUNT} floats "
                    f"(rows of {', '.join(schema.SLOT_NAMES)}), got {count}", field="features")
            if count // schema.FEATURE_COUNT > schema.MAX_BATCH_ROWS:
                raise errors.InvalidArgument(
                    f"at most {schema.MAX_BATCH_ROWS} rows per batch, got {count // schema.FEATURE_COUNT}; "
                    "split it or use RecommendStream", field="features")
            return None
        if len(request.texts) > schema.MAX_BATCH_TEXTS:
            raise errors.InvalidArgument(
                f"at most {schema.MAX_BATCH_TEXTS} texts per batch, got {len(request.texts)}", field="texts")
        # Off the event loop: up to 1,000 texts would stall every other call for a while.
        return await self._off_loop(
            prepare_text_batch, list(request.texts), request.top_k, request.model_version,
            request_ids.propagate(functools.partial(_vectorize, self.vectorizer)), self.text_pool)

    # ------------------------------------------------------------------ Chat

    async def chat(self, request: chat_pb2.ChatRequest, timeout: float | None) -> chat_pb2.ChatResponse:
        """One conversation turn: the engine reads the text and writes the reply, inference
        scores in between on this loop."""
        if self.remote:
            with deadlines.within(timeout):
                plan = await self._off_loop(self._understand, request)
        else:
            plan = self._understand(request)
        response = None
        if plan.wants_scores:
            response = await self.backend.recommend(recommend_pb2.RecommendRequest(
                features=plan.features, top_k=request.top_k), timeout)
        return self.chat_engine.answer(plan, response)

    def _understand(self, request: chat_pb2.ChatRequest):
        try:
            return self.chat_engine.understand(request)
        except VectorizerUnavailable as exc:
            raise errors.Unavailable(f"vectorizer unavailable and no fallback answered: {exc}") from None

    # ------------------------------------------------------------------ Metadata

    async def metadata(self, timeout: float | None) -> metadata_pb2.GetMetadataResponse:
        from gateway.metadata import gateway_view

        backend = await self.backend.metadata(timeout)
        return gateway_view(backend, self.vectorizer.name)
