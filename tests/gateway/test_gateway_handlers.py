"""gateway/handlers.py and gateway/batches.py as plain async code, without a server: which
thread a chat turn runs on, and what a vectorizer bug on one text of a batch does."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from gateway.batches import prepare_text_batch
from gateway.chat.dialogue import ChatEngine
from gateway.handlers import Handlers
from gateway.vectorizers.base import LOCAL, VectorizeResult
from recommender import errors
from recommender.v1 import chat_pb2, common_pb2, recommend_pb2


class ThreadRecordingVectorizer:
    name = LOCAL

    def __init__(self):
        self.threads: list[int] = []

    def vectorize(self, text: str) -> VectorizeResult:
        self.threads.append(threading.get_ident())
        return VectorizeResult((35.0, 1.0, 300_000.0, 5.0, 1.0, 0.0), LOCAL, "ko")


class FakeBackend:
    def __init__(self):
        self.threads: list[int] = []
        self.requests: list[recommend_pb2.RecommendRequest] = []

    async def recommend(self, request, timeout):
        self.threads.append(threading.get_ident())
        self.requests.append(request)
        return recommend_pb2.RecommendResponse(model_version=4, items=[
            common_pb2.RecommendedItem(product_id="console", name="Game console", name_ko="게임 콘솔",
                                       score=0.9, rank=1)])


def test_a_chat_turn_with_the_local_vectorizer_stays_on_the_event_loop():
    """Was: the turn ran on the pool and scored through run_coroutine_threadsafe (four thread
    crossings per turn). Now reading, scoring and answering all run on the loop's thread."""
    vectorizer, backend = ThreadRecordingVectorizer(), FakeBackend()
    pool = ThreadPoolExecutor(2)
    handlers = Handlers(vectorizer, backend, ChatEngine(vectorizer), pool, pool)

    async def turn():
        loop_thread = threading.get_ident()
        reply = await handlers.chat(chat_pb2.ChatRequest(text="게임기 40만원", top_k=2), timeout=5)
        return loop_thread, reply

    loop_thread, reply = asyncio.run(turn())
    pool.shutdown()
    assert vectorizer.threads == [loop_thread] and backend.threads == [loop_thread]
    assert reply.model_version == 4 and reply.items[0].product_id == "console"
    assert list(backend.requests[0].features)[:4] == [35, 1, 300_000, 5] and backend.requests[0].top_k == 2


def test_a_vectorizer_bug_on_one_text_is_a_row_error_not_a_failed_batch(caplog):
    def vectorize(text: str) -> VectorizeResult:
        if text == "boom":
            raise OverflowError("int too large to convert to float")
        return VectorizeResult((float(len(text)), 0, 0, 0, 0, 0), LOCAL, "en")

    prepared = prepare_text_batch(["ab", "boom", "abc"], top_k=0, model_version=0, vectorize=vectorize)
    assert prepared.forwarded_rows == [0, 2]
    assert [(e.row, e.field) for e in prepared.errors] == [(1, "texts[1]")]
    assert "internal error" in prepared.errors[0].message
    assert sum("event=internal_error" in r.getMessage() for r in caplog.records) == 1


def test_a_vectorizer_that_cannot_answer_fails_the_whole_batch():
    def vectorize(text: str) -> VectorizeResult:
        raise errors.Unavailable("Bedrock throttled and no fallback")

    with pytest.raises(errors.Unavailable):
        prepare_text_batch(["a", "b"], top_k=0, model_version=0, vectorize=vectorize)
