"""What the gateway and the inference server share about being a gRPC server: how the server
is built (options, limits, interceptors), where ports are bound, and the wrapper every
servicer method goes through (errors -> status via recommender.errors, metrics).

  new_server(settings, interceptors=[...])   ONE place per process where the server is built
                                             (recommender.security.CallInterceptor first:
                                             tokens, caller, request id, access log)
  bind(server, host, port, settings)         ONE place where a port is bound (TLS, and the
                                             no-plaintext-on-a-public-address rule)
  unary(method) / streaming(method)          servicer method wrappers (errors -> status, and
                                             `self.record(method, code, seconds)` per call)

Limits (issue 15), enforced before work is done:
  - request size: gRPC refuses a message longer than `max_receive_bytes` from its length
    prefix, before reading and decoding it (RESOURCE_EXHAUSTED naming both sizes);
  - concurrent RPCs: gRPC refuses calls beyond `max_concurrent_rpcs` before reading them;
  - streams: at most `max_streams` open RecommendStreams, each ended when idle longer than
    `stream_idle_timeout_s` or open longer than `stream_max_duration_s` (StreamLimits).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Sequence

import grpc

from recommender import errors, security
from recommender.request_decoding import UndecodableRequest
from recommender.settings import MAX_RESPONSE_BYTES


def server_options(settings, *, reuseport: bool) -> list[tuple[str, object]]:
    return [
        ("grpc.so_reuseport", 1 if reuseport else 0),
        ("grpc.max_receive_message_length", settings.max_receive_bytes),
        ("grpc.max_send_message_length", MAX_RESPONSE_BYTES),
        # HTTP/2 streams per connection: one connection cannot hold more streams than the server
        # takes calls in total.
        ("grpc.max_concurrent_streams", max(1, min(settings.max_concurrent_rpcs, 1024))),
        # Let clients (the gateway's channel) ping often enough to notice a frozen peer.
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 1_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_ping_strikes", 0),
    ]


def new_server(settings, *, interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
               reuseport: bool = False, metrics_prefix: str | None = None) -> grpc.aio.Server:
    """The process's grpc.aio server with its limits. The call interceptor (caller tokens,
    request ids, access log: recommender/security.py) runs first, so a caller without a
    token is refused before any limit or work; then the stream limiter, then `interceptors`.
    `metrics_prefix` names the caller counter (`<prefix>_rpcs_by_caller_total`)."""
    return grpc.aio.server(
        interceptors=[security.call_interceptor(settings, metrics_prefix), StreamLimits(settings),
                      *interceptors],
        options=server_options(settings, reuseport=reuseport),
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
    )


def bind(server: grpc.aio.Server, host: str, port: int, settings) -> int:
    """Listen on host:port (port 0: any free port) with TLS when --tls-cert/--tls-key are set;
    returns the bound port. Plaintext on an address other machines reach needs --insecure."""
    address = f"{host}:{port}"
    tls = security.server_tls(settings)
    security.check_listen_address(host, tls is not None, settings.insecure)
    bound = security.add_port(server, address, tls)
    if not bound:
        raise OSError(f"cannot listen on {address}")
    return bound


# ----------------------------------------------------------------------------- stream limits


class StreamLimits(grpc.aio.ServerInterceptor):
    """At most `max_streams` streaming calls open at once; each is ended when its caller sends
    nothing for `stream_idle_timeout_s` or keeps it open beyond `stream_max_duration_s`."""

    def __init__(self, settings):
        self.max_streams = settings.max_streams
        self.idle_s = settings.stream_idle_timeout_s
        self.total_s = settings.stream_max_duration_s
        self.open = 0

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or not handler.request_streaming:
            return handler
        behavior = handler.stream_stream if handler.response_streaming else handler.stream_unary
        limited = self._limit(behavior)
        make = (grpc.stream_stream_rpc_method_handler if handler.response_streaming
                else grpc.stream_unary_rpc_method_handler)
        return make(limited, request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer)

    def _limit(self, behavior):
        limiter = self

        async def limited(request_iterator, context):
            if limiter.open >= limiter.max_streams:
                message = (f"too many open streams: this server's limit of {limiter.max_streams} "
                           "concurrent streams is reached; retry later")
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, message)
            limiter.open += 1
            try:
                requests = limiter._bounded(request_iterator)
                result = behavior(requests, context)
                if hasattr(result, "__aiter__"):
                    async for response in result:
                        yield response
                else:
                    yield await result
            finally:
                limiter.open -= 1

        return limited

    async def _bounded(self, request_iterator) -> AsyncIterator:
        started = time.monotonic()
        iterator = request_iterator.__aiter__()
        while True:
            left = started + self.total_s - time.monotonic()
            if left <= 0:
                raise errors.ResourceExhausted(
                    f"stream open longer than this server's limit of {self.total_s:g} s; "
                    "open a new stream for more messages")
            try:
                async with asyncio.timeout(min(self.idle_s, left)):
                    message = await iterator.__anext__()
            except StopAsyncIteration:
                return
            except TimeoutError:
                if time.monotonic() - started >= self.total_s:
                    continue  # reported above
                raise errors.ResourceExhausted(
                    f"stream idle for more than this server's limit of {self.idle_s:g} s "
                    "between messages; half-close streams you are done with") from None
            yield message


# ----------------------------------------------------------------------------- servicer wrappers


def _invalid_bytes(request: UndecodableRequest, where: str = "") -> errors.InvalidArgument:
    return errors.InvalidArgument(where + request.describe(), field=request.field or "request")


async def fail(context, method: str, exc: BaseException) -> grpc.StatusCode:
    """End the call with the status of `exc` (raises grpc's AbortError); logs one line."""
    code, message, details = errors.status_of(exc)
    errors.log_failure(method, code, message, exc)
    # Keep what the call interceptor set (x-request-id, x-caller) next to the error details.
    current = getattr(context, "trailing_metadata", None)
    kept = tuple(current() or ()) if callable(current) else ()
    await context.abort(code, message, trailing_metadata=kept + errors.trailing_metadata(code, message, details))
    return code  # not reached: abort raises


def unary(method: str):
    """Wrap `async def handler(self, request, context)`: undecodable requests and every
    exception become the call's status through recommender.errors; the servicer's
    `record(method, code, seconds)` counts the call."""

    def wrap(handler):
        @functools.wraps(handler)
        async def run(self, request, context):
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                if isinstance(request, UndecodableRequest):
                    raise _invalid_bytes(request)
                return await handler(self, request, context)
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except grpc.aio.AbortError:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            except Exception as exc:  # noqa: BLE001 - every error becomes a status here
                code, _, _ = errors.status_of(exc)
                await fail(context, method, exc)
            finally:
                self.record(method, _code(code), time.perf_counter() - started)
        return run
    return wrap


def streaming(method: str):
    """`unary` for a bidirectional-streaming handler (an async generator over the requests);
    an undecodable message ends the stream with INVALID_ARGUMENT naming its position."""

    def wrap(handler):
        @functools.wraps(handler)
        async def run(self, request_iterator, context):
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                async for response in handler(self, decoded(request_iterator), context):
                    yield response
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except grpc.aio.AbortError:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            except Exception as exc:  # noqa: BLE001
                code, _, _ = errors.status_of(exc)
                await fail(context, method, exc)
            finally:
                self.record(method, _code(code), time.perf_counter() - started)
        return run
    return wrap


async def decoded(request_iterator):
    """A stream's messages; an undecodable one raises InvalidArgument naming its position."""
    index = 0
    async for request in request_iterator:
        if isinstance(request, UndecodableRequest):
            raise _invalid_bytes(request, f"stream message {index}: ")
        index += 1
        yield request


def _code(code) -> grpc.StatusCode:
    if isinstance(code, grpc.StatusCode):
        return code
    return errors.CODE_NAMES.get(code, grpc.StatusCode.UNKNOWN)
