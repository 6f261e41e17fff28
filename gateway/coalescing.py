"""Request coalescing for single Recommend calls: while inference is busy with the calls
already sent, the single calls that arrive meanwhile wait and then go to inference together
as ONE RecommendBatch instead of one RPC each ("natural batching": no timer, no added wait).

Why: a forwarded gRPC call costs the gateway about as much CPU as answering one (~250 µs of
Python gRPC each way), and inference pays per RPC too. Under concurrency one batch RPC for
the calls that queued up halves the gateway's per-call cost and lets inference score them
in one model call. Below `max_in_flight` outstanding sends a call goes out at once as a
plain Recommend, so a lone caller sees no extra latency.

Each row of the batch answer becomes the RecommendResponse the caller would have got from
a plain Recommend: product ids, names (`product_names`/`product_names_ko` carry the served
version's catalog labels) and scores.

Request ids: a call sent alone carries its own id to inference. A batch carries many calls,
so it gets its own id (that is the id inference logs) and the gateway logs one line joining
them: `event=coalesced_batch rows=N calls=<id>,<id>,... request_id=<batch id>` (access log).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from gateway import conversions
from gateway.backend import InferenceBackend
from recommender import errors, request_ids
from recommender.v1 import common_pb2, recommend_pb2

log = logging.getLogger("recommender.access.coalescing")

MAX_BATCH = 256
# A send still unanswered after this long stops holding its in-flight slot, so one batch stuck
# on a frozen worker (it is retried elsewhere by the backend after its try deadline) never
# holds the calls behind it.
STALL_S = 0.25


@dataclass
class _Waiter:
    features: tuple[float, ...]
    future: asyncio.Future
    deadline: float | None  # time.monotonic() value, None = no client deadline
    request_id: str | None = None  # the caller's (recommender.request_ids)
    caller: str | None = None


class RecommendCoalescer:
    def __init__(self, inference: InferenceBackend, max_batch: int = MAX_BATCH,
                 max_in_flight: int | None = None):
        self.inference = inference
        self.max_batch = max_batch
        # Measured on 2 cores, 2 inference workers, 32 callers: ONE send in flight lets the
        # calls that arrive meanwhile grow into batches of ~6 (gateway 1,700 -> 2,850 req/s);
        # two per address left 70% of calls going out alone. The gateway's own gRPC work is
        # the bottleneck, not inference, so spreading sends over workers bought nothing.
        self.max_in_flight = max_in_flight or 1
        self._in_flight = 0
        self._pending: dict[tuple[int, int], list[_Waiter]] = {}
        self._flush_scheduled = False
        self._tasks: set[asyncio.Task] = set()

    async def recommend(self, features: tuple[float, ...], top_k: int, model_version: int,
                        timeout: float | None) -> recommend_pb2.RecommendResponse:
        """Features already validated; top_k as the caller sent it (0 = default)."""
        loop = asyncio.get_running_loop()
        waiter = _Waiter(features, loop.create_future(),
                         None if timeout is None else time.monotonic() + timeout,
                         request_ids.REQUEST_ID.get(), request_ids.CALLER.get())
        self._pending.setdefault((top_k, model_version), []).append(waiter)
        if self._in_flight < self.max_in_flight and not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)  # after the other calls already waiting in this turn
        return await waiter.future

    # ------------------------------------------------------------------ internals

    def _flush(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, {}
        for (top_k, model_version), waiters in pending.items():
            for start in range(0, len(waiters), self.max_batch):
                group = waiters[start:start + self.max_batch]
                self._in_flight += 1
                self._spawn(self._send_counted(group, top_k, model_version))

    async def _send_counted(self, waiters: list[_Waiter], top_k: int, model_version: int) -> None:
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self._in_flight -= 1
            if self._pending and not self._flush_scheduled:
                self._flush_scheduled = True
                asyncio.get_running_loop().call_soon(self._flush)

        stalled = asyncio.get_running_loop().call_later(STALL_S, release)
        try:
            await self._send(waiters, top_k, model_version)
        finally:
            stalled.cancel()
            release()

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)  # keep a reference until done (the loop only holds weak ones)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def _timeout(waiters: Sequence[_Waiter]) -> float | None:
        """The batch may run as long as its most patient caller allows."""
        if any(w.deadline is None for w in waiters):
            return None
        return max(0.001, max(w.deadline for w in waiters) - time.monotonic())

    async def _single(self, waiter: _Waiter, top_k: int, model_version: int) -> None:
        # This task runs in the context of whichever call scheduled the flush: send (and log)
        # under the waiter's own identity.
        request_ids.REQUEST_ID.set(waiter.request_id)
        request_ids.CALLER.set(waiter.caller)
        try:
            request = recommend_pb2.RecommendRequest(features=waiter.features, top_k=top_k,
                                                     model_version=model_version)
            response = await self.inference.recommend(request, self._timeout([waiter]))
        except Exception as exc:  # noqa: BLE001 - handed to the caller as is
            _fail(waiter, exc)
            return
        if not waiter.future.done():
            waiter.future.set_result(response)

    async def _send(self, waiters: list[_Waiter], top_k: int, model_version: int) -> None:
        waiters = [w for w in waiters if not w.future.done()]  # callers that left are dropped
        if not waiters:
            return
        if len(waiters) == 1:
            await self._single(waiters[0], top_k, model_version)
            return
        flat = [value for w in waiters for value in w.features]
        request_ids.REQUEST_ID.set(request_ids.new_request_id())
        request_ids.CALLER.set(None)
        if log.isEnabledFor(logging.INFO):
            log.info("event=coalesced_batch rows=%d calls=%s", len(waiters),
                     ",".join(w.request_id or "-" for w in waiters))
        try:
            request = recommend_pb2.RecommendBatchRequest(features=flat, top_k=top_k, model_version=model_version)
            answer = await self.inference.recommend_batch(request, self._timeout(waiters))
        except Exception as exc:  # noqa: BLE001 - every caller of the batch gets the error
            for waiter in waiters:
                _fail(waiter, exc)
            return
        k = answer.top_k
        row_errors = {e.row: e for e in answer.errors}
        ids, names, names_ko = answer.product_ids, answer.product_names, answer.product_names_ko
        for row, waiter in enumerate(waiters):
            if waiter.future.done():
                continue
            if row in row_errors:  # the backend's row error reads like a single call's
                error = row_errors[row]
                _fail(waiter, errors.InvalidArgument(error.message, field=error.field or "features"))
                continue
            response = recommend_pb2.RecommendResponse(
                model_version=answer.model_version, features=waiter.features,
                slots=conversions.slots_from_features(waiter.features))
            for rank, position in enumerate(range(row * k, (row + 1) * k), start=1):
                index = answer.product_indices[position]
                response.items.append(common_pb2.RecommendedItem(
                    product_id=ids[index], name=names[index], name_ko=names_ko[index],
                    score=answer.scores[position], rank=rank))
            waiter.future.set_result(response)


def _fail(waiter: _Waiter, exc: BaseException) -> None:
    if not waiter.future.done():
        waiter.future.set_exception(exc)
