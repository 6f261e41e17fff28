"""A backend stream that inference ended while the gateway was still writing to it (its
stream limit refusing it under a stream flood, found by `make soak`): grpc-python's client
reports INTERNAL 'Internal error from Core' whatever inference sent, and the gateway passed
that on as INTERNAL. It is UNAVAILABLE (retry), not a bug."""

from __future__ import annotations

from types import SimpleNamespace

import grpc
from grpc.aio import AioRpcError, Metadata

from gateway.backend import LOST_STREAM_STATUS, InferenceBackend
from recommender import errors


def backend_error(code: grpc.StatusCode, details: str) -> errors.ServiceError:
    backend = SimpleNamespace(addresses=["localhost:8501"], refused=lambda exc: None)
    return InferenceBackend.stream_error(backend, AioRpcError(code, Metadata(), Metadata(), details))


def test_a_lost_stream_status_is_unavailable_not_internal():
    error = backend_error(grpc.StatusCode.INTERNAL, LOST_STREAM_STATUS)
    assert isinstance(error, errors.Unavailable)
    assert "ended the stream" in str(error)


def test_other_backend_stream_errors_keep_their_code():
    assert isinstance(backend_error(grpc.StatusCode.UNAVAILABLE, "connection reset"), errors.Unavailable)
    limit = backend_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many open streams")
    assert limit.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "too many open streams" in str(limit)
    assert backend_error(grpc.StatusCode.INTERNAL, "a real bug").code == grpc.StatusCode.INTERNAL
