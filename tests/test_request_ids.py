"""Request ids: what is accepted from a caller, context propagation across thread pools,
and the log filter that puts caller and request id on every line about a call."""

from __future__ import annotations

import io
import logging
from concurrent.futures import ThreadPoolExecutor

from recommender import request_ids


def test_a_sane_caller_id_is_kept_anything_else_replaced():
    assert request_ids.accept("0f9e3c1a-7b2d-4c1e-9a8b-123456789abc") == "0f9e3c1a-7b2d-4c1e-9a8b-123456789abc"
    assert request_ids.accept("batch-7") == "batch-7"
    for bad in (None, "", "has space", "x" * 129, "quote\"", "new\nline", "-leading-dash"):
        replaced = request_ids.accept(bad)
        assert replaced != bad and len(replaced) == 32 and int(replaced, 16) >= 0


def test_new_ids_are_unique_hex():
    ids = {request_ids.new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 for i in ids)


def test_outgoing_metadata_carries_the_current_id():
    assert request_ids.outgoing_metadata() == ()
    with request_ids.bound("abc123", "dev"):
        assert request_ids.outgoing_metadata() == (("x-request-id", "abc123"),)
        assert request_ids.outgoing_metadata("other") == (("x-request-id", "other"),)
    assert request_ids.current() is None


def test_propagate_carries_the_call_into_pool_threads_concurrently():
    def seen(_):
        return request_ids.current(), request_ids.CALLER.get()

    with ThreadPoolExecutor(4) as pool:
        with request_ids.bound("rid-1", "dev"):
            plain = pool.submit(seen, 0).result()
            wrapped = list(pool.map(request_ids.propagate(seen), range(16)))
    assert plain == (None, None)  # a bare thread hop loses the context: why propagate exists
    assert wrapped == [("rid-1", "dev")] * 16


def _logger_with_stream():
    stream = io.StringIO()
    logger = logging.getLogger("tests.request_ids.isolated")
    logger.handlers.clear()
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("level=%(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger, stream


def test_log_lines_inside_a_call_carry_caller_and_request_id():
    logger, stream = _logger_with_stream()
    request_ids.install_log_context(logger)
    request_ids.install_log_context(logger)  # idempotent: one filter, one suffix
    child = logging.getLogger("tests.request_ids.isolated.child")
    logger.info("event=outside")
    with request_ids.bound("rid-42", "dev"):
        logger.info("event=inside value=%d", 7)
        child.warning("event=from_a_child_logger")
    with request_ids.bound("rid-43"):
        logger.info("event=no_caller")
    lines = stream.getvalue().splitlines()
    assert lines == [
        "level=INFO event=outside",
        "level=INFO event=inside value=7 caller=dev request_id=rid-42",
        "level=WARNING event=from_a_child_logger caller=dev request_id=rid-42",
        "level=INFO event=no_caller request_id=rid-43",
    ]
    assert len(logger.handlers[0].filters) == 1


def test_coalesced_calls_travel_under_a_batch_id_logged_with_their_own(caplog):
    """Concurrent single Recommends leave as one RecommendBatch: inference sees the batch's own
    id, and one gateway line joins it to the callers' ids; a call sent alone keeps its id."""
    import asyncio

    from gateway.coalescing import RecommendCoalescer
    from recommender.v1 import recommend_pb2

    seen = []

    class Backend:
        async def recommend(self, request, timeout):
            seen.append(("single", request_ids.current()))
            return recommend_pb2.RecommendResponse(model_version=1)

        async def recommend_batch(self, request, timeout):
            seen.append(("batch", request_ids.current()))
            await asyncio.sleep(0)
            rows = len(request.features) // 6
            return recommend_pb2.RecommendBatchResponse(
                model_version=1, top_k=1, rows=rows, product_ids=["a"], product_names=["A"],
                product_names_ko=["ㄱ"], product_indices=[0] * rows, scores=[1.0] * rows)

    async def call(coalescer, rid):
        with request_ids.bound(rid, "dev"):
            return await coalescer.recommend((30.0, 1.0, 0.0, 0.0, 0.0, 0.0), 1, 0, timeout=5)

    async def go():
        coalescer = RecommendCoalescer(Backend(), max_in_flight=1)
        await call(coalescer, "alone-1")
        await asyncio.gather(*(call(coalescer, f"c-{i}") for i in range(5)))

    caplog.set_level("INFO", logger="recommender.access")
    caplog.handler.addFilter(request_ids.CallContextFilter())
    asyncio.run(go())
    assert seen[0] == ("single", "alone-1")
    batch_ids = [rid for kind, rid in seen if kind == "batch"]
    assert batch_ids and all(len(rid) == 32 for rid in batch_ids)
    joined = [r for r in caplog.records if "event=coalesced_batch" in r.getMessage()]
    assert {r.call_context.split("request_id=")[1] for r in joined} == set(batch_ids)
    carried = {rid for r in joined for rid in r.getMessage().split("calls=")[1].split(",")}
    singles = {rid for kind, rid in seen if kind == "single"}
    assert carried | singles == {"alone-1", *(f"c-{i}" for i in range(5))}
