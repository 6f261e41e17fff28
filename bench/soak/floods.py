"""The abusive bursts: oversized messages and floods of streams, straight at one gateway
replica (TLS, the caller token) and at inference (mTLS, as a gateway would). Each returns the
status codes its calls ended with, by group ("gateway RESOURCE_EXHAUSTED": 16, …), and the
first details seen for each of them.

- message flood: `count` concurrent requests of `size` bytes (63.9 MiB by default; the servers'
  limit is 8 MiB and must refuse them from the length prefix, RESOURCE_EXHAUSTED, before
  reading them into memory);
- stream flood: `held` RecommendStreams opened over several connections that each send one
  message (once the server did not refuse the stream within REFUSAL_WAIT_S) and never half-close (the server keeps at most --max-streams of them and must refuse
  the rest), then `bursts` x `burst` new streams (one message, half-closed) while those are held.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import Counter

import grpc

RECOMMEND_BATCH = "/recommender.v1.RecommendService/RecommendBatch"
RECOMMEND_STREAM = "/recommender.v1.RecommendService/RecommendStream"
FLOOD_MESSAGE_BYTES = int(63.9 * 1024 * 1024)
REFUSAL_WAIT_S = 1.0  # how long a held stream waits for a refusal before its first message
ANSWERED = "ANSWERED"  # a held stream that got its first answer and stayed open
LOST = "LOST"  # status lost in the client and no access-log line: grpc ended it before our code
NO_ANSWER = "NO_ANSWER"  # a held stream with neither an answer nor an error before the deadline
# What grpc-python's aio client reports, whatever the server sent, when a server ends a stream
# while the client is still writing to it (its send fails and overwrites the status: grpc/aio
# _call.py, set_internal_error). The server's access log has the real code (see server_codes).
CLIENT_CORE_INTERNAL = "Internal error from Core"
_ACCESS_LINE = re.compile(r"event=rpc .*?\bcode=(?P<code>[A-Z_]+)\b.*?\brequest_id=(?P<id>\S+)")


def server_codes(access_log: str, request_ids) -> dict[str, str]:
    """The status code a server's access log (`event=rpc … code=X … request_id=Y`) gives each
    of `request_ids` it has a line for."""
    wanted = set(request_ids)
    found = {}
    for match in _ACCESS_LINE.finditer(access_log):
        if match["id"] in wanted:
            found[match["id"]] = match["code"]
    return found


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def oversized_batch(size: int = FLOOD_MESSAGE_BYTES) -> bytes:
    """A valid RecommendBatchRequest of `size` bytes (to 3 bytes below): `features` (field 1,
    packed floats) of zeros. Built as wire bytes: no 16-million-float list in Python."""
    body = (size - 1 - len(_varint(size))) // 4 * 4
    return b"\x0a" + _varint(body) + bytes(body)


def small_stream_request() -> bytes:
    from recommender.v1 import recommend_pb2

    return recommend_pb2.RecommendStreamRequest(
        batch=recommend_pb2.RecommendBatchRequest(features=[35, 1, 300_000, 2, 1, 0])).SerializeToString()


def _channel(target: str, credentials: grpc.ChannelCredentials, own_connection: int = 0) -> grpc.aio.Channel:
    # A channel argument that differs per channel, plus a local subchannel pool: one TCP
    # connection each (HTTP/2 caps the streams of one connection).
    return grpc.aio.secure_channel(target, credentials, options=[
        ("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", 16 * 1024 * 1024),
        ("grpc.use_local_subchannel_pool", 1), ("soak.connection", own_connection)])


async def _message_flood(target: str, credentials, metadata, payload: bytes, count: int,
                         timeout: float, details: dict[str, str]) -> Counter:
    codes: Counter = Counter()
    async with _channel(target, credentials) as channel:
        call = channel.unary_unary(RECOMMEND_BATCH, request_serializer=None, response_deserializer=None)

        async def one():
            try:
                await call(payload, timeout=timeout, metadata=metadata)
                codes["OK"] += 1
            except grpc.aio.AioRpcError as exc:
                codes[exc.code().name] += 1
                details.setdefault(exc.code().name, exc.details() or "")

        await asyncio.gather(*(one() for _ in range(count)))
    return codes


def message_flood(targets: dict[str, tuple[str, grpc.ChannelCredentials, tuple]], count: int = 16,
                  size: int = FLOOD_MESSAGE_BYTES, timeout: float = 60.0) -> tuple[Counter, dict[str, str]]:
    """`count` concurrent `size`-byte requests to each target in turn (name -> (target,
    credentials, metadata)); codes by "name CODE", first details by "name CODE"."""
    payload = oversized_batch(size)
    codes: Counter = Counter()
    details: dict[str, str] = {}
    for name, (target, credentials, metadata) in targets.items():
        seen: dict[str, str] = {}
        for code, n in asyncio.run(_message_flood(target, credentials, metadata, payload, count, timeout,
                                                  seen)).items():
            codes[f"{name} {code}"] += n
        details.update({f"{name} {code}": text for code, text in seen.items()})
    return codes, details


async def _stream_flood(target: str, credentials, metadata, held: int, connections: int, bursts: int,
                        burst: int, answer_wait_s: float, hold_s: float,
                        details: dict[str, str], lost: dict[str, str]) -> Counter:
    codes: Counter = Counter()
    run = uuid.uuid4().hex[:8]

    def tagged(group: str, i: int) -> tuple:
        return (*metadata, ("x-request-id", f"soak-{run}-{group}-{i}"))

    def outcome(group: str, i: int, exc: grpc.aio.AioRpcError) -> str:
        if exc.code() == grpc.StatusCode.INTERNAL and exc.details() == CLIENT_CORE_INTERNAL:
            lost[f"soak-{run}-{group}-{i}"] = group
        else:
            details.setdefault(f"{group} {exc.code().name}", exc.details() or "")
        return exc.code().name
    request = small_stream_request()
    channels = [_channel(target, credentials, i) for i in range(connections)]
    try:
        methods = [c.stream_stream(RECOMMEND_STREAM, request_serializer=None, response_deserializer=None)
                   for c in channels]

        async def hold(i: int) -> str:
            # Reader/writer style: the first message is written only to a stream the server
            # did not refuse at once (a write racing the refusal loses the status in the
            # client, see CLIENT_CORE_INTERNAL); never half-closed.
            call = methods[i % connections](metadata=tagged("held", i))
            held_calls.append(call)
            try:
                try:
                    await asyncio.wait_for(asyncio.shield(call.initial_metadata()), REFUSAL_WAIT_S)
                except TimeoutError:
                    pass
                if not call.done():
                    await call.write(request)
                    await asyncio.wait_for(call.read(), answer_wait_s)
                    return ANSWERED
            except grpc.aio.AioRpcError as exc:
                return outcome("held", i, exc)
            except TimeoutError:
                return NO_ANSWER
            except asyncio.InvalidStateError:  # ended between the check and the write
                pass
            code, text = await call.code(), await call.details()
            if code != grpc.StatusCode.OK:
                details.setdefault(f"held {code.name}", text or "")
            return code.name

        async def one_shot(group: str, i: int) -> str:
            async def requests():
                yield request

            call = methods[i % connections](requests(), metadata=tagged(group, i), timeout=answer_wait_s)
            try:
                async for _ in call:
                    pass
                return "OK"
            except grpc.aio.AioRpcError as exc:
                return outcome(group, i, exc)

        held_calls: list = []
        for result in await asyncio.gather(*(hold(i) for i in range(held))):
            codes[f"held {result}"] += 1
        for b in range(bursts):
            for result in await asyncio.gather(*(one_shot(f"burst{b}", i) for i in range(burst))):
                codes[f"burst {result}"] += 1
        await asyncio.sleep(hold_s)
        for call in held_calls:
            call.cancel()
    finally:
        for channel in channels:
            await channel.close()
    return codes


def stream_flood(target: str, credentials: grpc.ChannelCredentials, metadata: tuple, held: int = 2_000,
                 connections: int = 8, bursts: int = 3, burst: int = 1_000, answer_wait_s: float = 30.0,
                 hold_s: float = 2.0) -> tuple[Counter, dict[str, str], dict[str, str]]:
    """Codes by "held CODE" / "burst CODE", first details of each, and the calls whose status
    the client lost (CLIENT_CORE_INTERNAL), by request id -> "held" / "burstN"."""
    details: dict[str, str] = {}
    lost: dict[str, str] = {}
    codes = asyncio.run(_stream_flood(target, credentials, metadata, held, connections, bursts, burst,
                                      answer_wait_s, hold_s, details, lost))
    return codes, details, lost


def resolve_lost(codes: Counter, lost: dict[str, str], server: dict[str, str]) -> int:
    """Replace each lost status (counted as "<group> INTERNAL") by the code the server logged
    for that request id; one the server has no line for never reached its code (grpc ended it
    first) and becomes "<group> LOST". Returns how many were found in the log."""
    resolved = 0
    for request_id, group in lost.items():
        code = server.get(request_id)
        kind = "held" if group == "held" else "burst"
        codes[f"{kind} INTERNAL"] -= 1
        codes[f"{kind} {code or LOST}"] += 1
        resolved += code is not None
    for key in [k for k, n in codes.items() if n <= 0]:
        del codes[key]
    return resolved
