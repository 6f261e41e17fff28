"""Request ids end to end: one id per call, in every log line about the call, on every
outgoing hop, and back to the caller.

- A call's id is the caller's `x-request-id` metadata when it is a sane token (Envoy sends a
  UUID), else a new uuid4 hex. The server interceptor (recommender.security.CallInterceptor)
  accepts it, stores it in the `REQUEST_ID` context variable with the caller's name
  (`CALLER`), and returns it in trailing metadata (`x-request-id`, plus `x-caller`).
- `CallContextFilter` appends ` caller=… request_id=…` to every log line written while a
  call is being handled (`install_log_context()` puts it on the root handlers), so the
  gateway's and inference's lines about one call can be joined with Envoy's access log.
- The gateway sends the id to inference on every outgoing call (`outgoing_metadata()`).
  Work handed to a thread pool must carry the context along: `propagate(fn)` runs `fn` in
  a copy of the current context (loop.run_in_executor does not copy it; asyncio.to_thread
  does). A coalesced batch (gateway/coalescing.py) serves many calls: it gets its own id,
  logged next to the ids of the calls it carries, and that batch id is what inference logs.

grpc.aio runs each RPC from a fresh contextvars.Context, so values set for one call never
leak into another. Importable without grpc.
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

HEADER = "x-request-id"
CALLER_HEADER = "x-caller"
# What we accept from a caller: printable, no spaces or quotes (it goes into log lines and
# metadata as is), at most 128 characters. Envoy's UUIDs and our hex ids pass.
_ACCEPTABLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=@-]{0,127}")

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
CALLER: contextvars.ContextVar[str | None] = contextvars.ContextVar("caller", default=None)

T = TypeVar("T")


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept(value: str | None) -> str:
    """The caller's id when it is acceptable, else a new one."""
    if value and _ACCEPTABLE.fullmatch(value):
        return value
    return new_request_id()


def current() -> str | None:
    return REQUEST_ID.get()


def outgoing_metadata(request_id: str | None = None) -> tuple[tuple[str, str], ...]:
    """Metadata carrying `request_id` (default: the current call's) to the next hop."""
    request_id = request_id or REQUEST_ID.get()
    return ((HEADER, request_id),) if request_id else ()


@contextmanager
def bound(request_id: str | None, caller: str | None = None) -> Iterator[None]:
    """Set the call identity for a block (tests, background work started for one call)."""
    rid_token = REQUEST_ID.set(request_id)
    caller_token = CALLER.set(caller)
    try:
        yield
    finally:
        REQUEST_ID.reset(rid_token)
        CALLER.reset(caller_token)


def propagate(fn: Callable[..., T]) -> Callable[..., T]:
    """`fn` wrapped to run in a copy of the context current NOW (on the calling thread).

    Each invocation gets its own copy, so the wrapper may run on many threads at once
    (`pool.map(propagate(one), items)`)."""
    context = contextvars.copy_context()

    def run(*args: Any, **kwargs: Any) -> T:
        return context.copy().run(fn, *args, **kwargs)

    return run


# ------------------------------------------------------------------------------- logging


def call_context() -> str:
    """' caller=… request_id=…' for the current call, '' outside a call."""
    request_id = REQUEST_ID.get()
    if request_id is None:
        return ""
    caller = CALLER.get()
    return f" caller={caller} request_id={request_id}" if caller else f" request_id={request_id}"


class CallContextFilter(logging.Filter):
    """Sets `record.call_context` (see `call_context()`); a format ending in
    `%(call_context)s` prints it. Put it on handlers: a logger's own filters do not see
    records propagated from child loggers."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "call_context"):
            record.call_context = call_context()
        return True


LOG_FIELD = "%(call_context)s"


def install_log_context(logger: logging.Logger | None = None) -> None:
    """Add CallContextFilter to every handler of `logger` (default: the root logger) and
    append `%(call_context)s` to each handler's format when it lacks it. Call after
    logging.basicConfig; calling it twice changes nothing."""
    logger = logger or logging.getLogger()
    for handler in logger.handlers:
        if not any(isinstance(f, CallContextFilter) for f in handler.filters):
            handler.addFilter(CallContextFilter())
        formatter = handler.formatter or logging.Formatter()
        fmt = getattr(formatter, "_fmt", None) or "%(message)s"
        if "call_context" not in fmt:
            replacement = logging.Formatter(fmt + LOG_FIELD, formatter.datefmt)
            replacement.converter = formatter.converter
            handler.setFormatter(replacement)
