"""The caller's deadline, handed down to a vectorizer without changing its signature.

`Vectorizer.vectorize(text)` takes only the text; a remote vectorizer (Bedrock) also needs the
time the caller has left, so it can bound its read timeouts and give up retrying before the
caller has. The handler that serves an RPC sets the deadline around the call
(`with deadlines.within(seconds): vectorizer.vectorize(text)`, in the thread that calls), and
the vectorizer reads `deadlines.remaining()`. A contextvar, so concurrent calls on other
threads or tasks never see each other's deadline; nothing set means no deadline.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_DEADLINE: ContextVar[float | None] = ContextVar("vectorize_deadline", default=None)


@contextmanager
def until(deadline: float | None) -> Iterator[None]:
    """Calls inside have until `deadline` (a time.monotonic() value; None: no deadline). An
    outer, earlier deadline is kept."""
    outer = _DEADLINE.get()
    if deadline is None or (outer is not None and outer <= deadline):
        deadline = outer
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def within(timeout_s: float | None):
    """Calls inside have `timeout_s` seconds from now (None: no deadline)."""
    return until(None if timeout_s is None else time.monotonic() + timeout_s)


def current() -> float | None:
    """The deadline (time.monotonic() value) of the calling context, or None."""
    return _DEADLINE.get()


def remaining() -> float | None:
    """Seconds left before the deadline (may be <= 0), or None without one."""
    deadline = _DEADLINE.get()
    return None if deadline is None else deadline - time.monotonic()
