"""Typed errors: every failed call raises a RecommenderError subclass that keeps the gRPC status
code, the server's message, the request id, and the google.rpc.BadRequest field violations the
server attached (which request field was wrong, e.g. "features[2]")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2, status_pb2

# Trailing metadata key of the google.rpc.Status details (the gRPC "rich error model").
STATUS_DETAILS_KEY = "grpc-status-details-bin"
REQUEST_ID_KEY = "x-request-id"


@dataclass(frozen=True)
class FieldViolation:
    """One wrong request field: `field` is its path, e.g. "features[2]" or "texts[3]"."""

    field: str
    description: str


class RecommenderError(Exception):
    """A failed call. `code` is the grpc.StatusCode, `details` the server's message,
    `field_violations` the BadRequest violations (empty unless INVALID_ARGUMENT), `request_id`
    the id the call travelled with (quote it when reporting a problem)."""

    def __init__(self, code: grpc.StatusCode, details: str,
                 field_violations: Sequence[FieldViolation] = (), request_id: str | None = None):
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details
        self.field_violations: tuple[FieldViolation, ...] = tuple(field_violations)
        self.request_id = request_id


class InvalidArgument(RecommenderError, ValueError):
    """The request broke the contract (bad vector, text, top_k); fix the input. The wrong fields
    are in `field_violations`."""


class Unavailable(RecommenderError):
    """The server (or the gateway's backend) cannot answer right now; retry later."""


class DeadlineExceeded(RecommenderError):
    """The call did not finish within its timeout."""


class NotFound(RecommenderError):
    """A requested model version is not loaded."""


class Unimplemented(RecommenderError):
    """The server does not offer this method (e.g. Chat on the inference server)."""


class ResourceExhausted(RecommenderError):
    """The server is overloaded or the message is too large."""


class Unauthenticated(RecommenderError):
    """No token or a token the server does not know: set `token=` or RECOMMENDER_TOKEN."""


class PermissionDenied(RecommenderError):
    """The token is known but may not call this method."""


ERROR_CLASSES: dict[grpc.StatusCode, type[RecommenderError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.UNIMPLEMENTED: Unimplemented,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
}


def metadata_value(metadata, key: str) -> str | None:
    """The first value of `key` in gRPC metadata (a sequence of (key, value) pairs or None)."""
    for name, value in metadata or ():
        if name == key:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return None


def field_violations(trailing_metadata) -> tuple[FieldViolation, ...]:
    """BadRequest field violations from a status's google.rpc.Status details, if any."""
    for name, value in trailing_metadata or ():
        if name != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        try:
            status = status_pb2.Status.FromString(value)
        except Exception:  # not ours to fail on: the code and message still stand
            return ()
        violations = []
        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
                violations.extend(FieldViolation(v.field, v.description) for v in bad_request.field_violations)
        return tuple(violations)
    return ()


def error_from_rpc(exc: grpc.RpcError, request_id: str | None = None) -> RecommenderError:
    """The typed error for a failed call (sync grpc.RpcError or grpc.aio.AioRpcError)."""
    code = exc.code() if callable(getattr(exc, "code", None)) else grpc.StatusCode.UNKNOWN
    details = (exc.details() if callable(getattr(exc, "details", None)) else None) or str(exc)
    trailing = exc.trailing_metadata() if callable(getattr(exc, "trailing_metadata", None)) else None
    initial = exc.initial_metadata() if callable(getattr(exc, "initial_metadata", None)) else None
    returned_id = metadata_value(trailing, REQUEST_ID_KEY) or metadata_value(initial, REQUEST_ID_KEY)
    return ERROR_CLASSES.get(code, RecommenderError)(
        code, details, field_violations(trailing), returned_id or request_id)
