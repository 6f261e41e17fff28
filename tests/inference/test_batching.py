"""The adaptive dynamic batcher (inference/batching.py) and the interceptor that feeds it the
Recommend calls in flight (inference/servicer.py): plain asyncio, no server, no clock.

Calls are tasks, as grpc.aio runs each RPC: a call is tracked from its start, may yield to the
loop (reading its request) and then submits its row."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import numpy as np

from inference.batching import DynamicBatcher
from inference.servicer import RECOMMEND_METHOD, RecommendCallsInFlight
from tests.inference.test_units import FakeModel, _row

WINDOW_S = 0.05  # long: a row that waits is plainly not done after a few loop turns


async def _call(batcher: DynamicBatcher, model, row, turns_before_submit: int = 1):
    """One Recommend call as a task: tracked, reads its request (loop turns), submits."""
    batcher.track_call(asyncio.current_task())
    for _ in range(turns_before_submit):
        await asyncio.sleep(0)
    future = batcher.submit(model, row)
    scored_at_once = future.done()
    return scored_at_once, await future


async def _lone_call(batcher: DynamicBatcher, model, row):
    """A call while no other is in flight; its answer takes at least a loop turn to reach the
    caller, and the caller's next call starts after that."""
    result = await asyncio.create_task(_call(batcher, model, row))
    await asyncio.sleep(0)
    return result


def test_a_lone_callers_rows_are_scored_at_once_and_never_wait():
    model = FakeModel(1, [])

    async def main():
        batcher = DynamicBatcher(max_batch_size=64, timeout_s=WINDOW_S)
        for i in range(20):  # one caller: a call, its answer, the next call
            scored_at_once, probs = await _lone_call(batcher, model, _row(i + 1, i))
            assert scored_at_once and probs[i % 10] == i + 1
            assert batcher.calls_in_flight == 0
        return batcher

    batcher = asyncio.run(main())
    assert model.calls == [1] * 20 and not batcher.concurrent


def test_concurrent_calls_share_model_calls():
    model = FakeModel(1, [])

    async def main():
        batcher = DynamicBatcher(max_batch_size=64, timeout_s=WINDOW_S)
        calls = [asyncio.create_task(_call(batcher, model, _row(i + 1, i))) for i in range(40)]
        return await asyncio.gather(*calls)

    results = asyncio.run(main())
    # All 40 were in flight when the first submitted: one window, one model call.
    assert model.calls == [40]
    assert not any(at_once for at_once, _ in results)
    assert [int(np.argmax(probs)) for _, probs in results] == [i % 10 for i in range(40)]


def test_a_row_waits_for_company_when_another_call_is_in_flight_beside_its_own():
    model = FakeModel(1, [])

    async def main():
        batcher = DynamicBatcher(max_batch_size=64, timeout_s=WINDOW_S)
        # A second call is in flight (still reading its request) when the first submits.
        first = asyncio.create_task(_call(batcher, model, _row(1, 1)))
        second = asyncio.create_task(_call(batcher, model, _row(2, 2), turns_before_submit=5))
        for _ in range(3):
            await asyncio.sleep(0)
        assert batcher.calls_in_flight == 2 and not first.done()  # waiting in the window
        await asyncio.gather(first, second)
        assert model.calls == [2]

    asyncio.run(main())


def test_after_concurrent_calls_the_next_row_waits_once_then_a_lone_caller_is_immediate():
    model = FakeModel(1, [])

    async def main():
        batcher = DynamicBatcher(max_batch_size=64, timeout_s=WINDOW_S)
        await asyncio.gather(*(asyncio.create_task(_call(batcher, model, _row(1, 1))) for _ in range(3)))
        assert model.calls == [3] and batcher.concurrent
        # The load drops to one caller: its first row still gets a window (other calls were in
        # flight when the last one closed), which closes with only that call in flight; from
        # then on rows are scored at once.
        scored_at_once, _ = await _lone_call(batcher, model, _row(1, 1))
        assert not scored_at_once and not batcher.concurrent
        for _ in range(3):
            scored_at_once, _ = await _lone_call(batcher, model, _row(1, 1))
            assert scored_at_once

    asyncio.run(main())
    assert model.calls == [3, 1, 1, 1, 1]


def test_two_calls_in_flight_at_once_open_the_window_for_the_next_row():
    """The first call is scored at once and is still sending its answer when a second call
    starts: two calls in flight at once is concurrency, so the second call's row waits, though
    the first call has ended by the time that row arrives."""
    model = FakeModel(1, [])

    async def main():
        batcher = DynamicBatcher(max_batch_size=64, timeout_s=WINDOW_S)
        answer_sent = asyncio.Event()

        async def first_call():
            batcher.track_call(asyncio.current_task())
            future = batcher.submit(model, _row(1, 1))
            assert future.done()  # alone so far: scored at once
            await answer_sent.wait()  # sending the answer

        first = asyncio.create_task(first_call())
        await asyncio.sleep(0)
        assert not batcher.concurrent
        second = asyncio.create_task(_call(batcher, model, _row(2, 2), turns_before_submit=3))
        await asyncio.sleep(0)
        assert batcher.calls_in_flight == 2 and batcher.concurrent
        answer_sent.set()
        await first
        await asyncio.sleep(0)
        assert batcher.calls_in_flight == 1
        scored_at_once, _ = await second
        assert not scored_at_once

    asyncio.run(main())
    assert model.calls == [1, 1]


def test_a_window_that_closes_alone_while_others_are_in_flight_keeps_batching_on():
    """Under load a window may close with one row while other calls are still being read:
    that is still concurrency, so the next row waits for company however few are in flight."""
    model = FakeModel(1, [])

    async def main():
        batcher = DynamicBatcher(max_batch_size=64, timeout_s=WINDOW_S)
        request_read = asyncio.Event()

        async def slow_call():  # its request takes longer than the first call's window
            batcher.track_call(asyncio.current_task())
            await request_read.wait()
            future = batcher.submit(model, _row(2, 2))
            return future.done(), await future

        slow = asyncio.create_task(slow_call())
        scored_at_once, _ = await _lone_call(batcher, model, _row(1, 1))
        assert not scored_at_once and model.calls == [1] and batcher.concurrent
        assert batcher.calls_in_flight == 1  # only the slow call now
        request_read.set()
        scored_at_once, _ = await slow
        assert not scored_at_once and not batcher.concurrent

    asyncio.run(main())
    assert model.calls == [1, 1]


def test_always_open_window_makes_even_a_lone_caller_wait():
    """--no-batch-adaptive: every row waits for company up to the timeout."""
    model = FakeModel(1, [])

    async def main():
        batcher = DynamicBatcher(max_batch_size=64, timeout_s=WINDOW_S, adaptive=False)
        for _ in range(2):
            scored_at_once, _ = await _lone_call(batcher, model, _row(1, 1))
            assert not scored_at_once

    asyncio.run(main())
    assert model.calls == [1, 1]


def test_a_call_counts_until_its_task_ends_however_it_ends():
    async def main():
        batcher = DynamicBatcher(max_batch_size=64, timeout_s=WINDOW_S)
        never = asyncio.Event()

        async def answered():
            batcher.track_call(asyncio.current_task())

        async def failed():
            batcher.track_call(asyncio.current_task())
            raise ValueError("bad request")

        async def cancelled():
            batcher.track_call(asyncio.current_task())
            await never.wait()

        tasks = [asyncio.create_task(f()) for f in (answered, failed, cancelled)]
        await asyncio.sleep(0)
        assert batcher.calls_in_flight == 3
        tasks[2].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0)  # done callbacks run on the next loop turn
        assert batcher.calls_in_flight == 0
        batcher.track_call(None)  # no task to follow: not counted
        assert batcher.calls_in_flight == 0

    asyncio.run(main())


def test_interceptor_tracks_recommend_calls_only():
    async def main():
        batcher = DynamicBatcher(max_batch_size=64, timeout_s=WINDOW_S)
        interceptor = RecommendCallsInFlight(batcher)
        handler = object()

        async def continuation(details):
            return handler

        gate = asyncio.Event()

        async def rpc(method):  # grpc.aio looks the handler up inside the call's own task
            assert await interceptor.intercept_service(continuation, SimpleNamespace(method=method)) is handler
            await gate.wait()  # the rest of the call

        calls = [asyncio.create_task(rpc(method)) for method in (
            RECOMMEND_METHOD, "/recommender.v1.RecommendService/RecommendBatch", "/grpc.health.v1.Health/Check")]
        await asyncio.sleep(0)
        assert batcher.calls_in_flight == 1
        gate.set()
        await asyncio.gather(*calls)
        await asyncio.sleep(0)
        assert batcher.calls_in_flight == 0

    asyncio.run(main())
    assert RECOMMEND_METHOD == "/recommender.v1.RecommendService/Recommend"
