"""The errors of the serving processes, and the ONE mapping from an error to a gRPC status.

Domain code (schema validation, handlers, the model manager, the inference backend) raises a
`ServiceError` subclass; each kind carries its gRPC status code. The servicers of gateway and
inference never build statuses themselves: `recommender.serving.unary`/`streaming` catch the
error and `status_of` turns it into (code, message, google.rpc.Status details).

  InvalidArgument    INVALID_ARGUMENT   always with google.rpc.BadRequest field violations
  NotFound           NOT_FOUND          a pinned model version that is not loaded
  ResourceExhausted  RESOURCE_EXHAUSTED a server limit (message names it)
  Unavailable        UNAVAILABLE        no model yet, no inference server, Bedrock down
  DeadlineExceeded   DEADLINE_EXCEEDED  the caller's deadline passed
  BackendError       the code of the inference server's answer, passed through with its details
  anything else      INTERNAL           a bug: logged as one line, the caller gets no internals

Batch rows that cannot be scored are not errors of the call: they are `RowProblem`s, returned
in the response's `errors` with the row, the field and the message.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

log = logging.getLogger("recommender.errors")

# The trailing metadata key of google.rpc.Status details (the gRPC "rich error model").
STATUS_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class FieldViolation:
    """Which request field is wrong and why, e.g. ("features[2]", "budget must be ...")."""

    field: str
    description: str


class ServiceError(Exception):
    """An error a caller can act on. Subclasses set `code`."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def details(self) -> list[any_pb2.Any]:
        """google.rpc.Status details (packed messages) sent with the status."""
        return []

    def prefixed(self, prefix: str) -> ServiceError:
        """The same error with `prefix` in front of its message (e.g. "stream message 3: ")."""
        clone = self.__class__.__new__(self.__class__)
        clone.__dict__.update(self.__dict__)
        Exception.__init__(clone, prefix + self.message)
        clone.message = prefix + self.message
        return clone


class InvalidArgument(ServiceError, ValueError):
    """Bad input. Always names the field(s): google.rpc.BadRequest carries them. (Also a
    ValueError, for plain-Python callers; the mapping never treats ValueError as bad input.)"""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, message: str, field: str | None = None,
                 violations: Sequence[FieldViolation] = ()):
        super().__init__(message)
        if not violations:
            violations = (FieldViolation(field or "", message),)
        self.violations: tuple[FieldViolation, ...] = tuple(violations)

    @property
    def field(self) -> str:
        return self.violations[0].field

    def details(self) -> list[any_pb2.Any]:
        bad_request = error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in self.violations])
        packed = any_pb2.Any()
        packed.Pack(bad_request)
        return [packed]


class NotFound(ServiceError):
    code = grpc.StatusCode.NOT_FOUND


class ResourceExhausted(ServiceError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(ServiceError):
    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(ServiceError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class BackendError(ServiceError):
    """The answer of a downstream server (inference), passed on with its code and details."""

    def __init__(self, code: grpc.StatusCode, message: str, raw_details: bytes | None = None):
        super().__init__(message)
        self.code = code
        self.raw_details = raw_details

    @classmethod
    def from_rpc_error(cls, exc: grpc.RpcError, message: str | None = None) -> BackendError:
        code = exc.code() if callable(getattr(exc, "code", None)) else grpc.StatusCode.UNKNOWN
        details = exc.details() if callable(getattr(exc, "details", None)) else None
        raw = None
        trailing = exc.trailing_metadata() if callable(getattr(exc, "trailing_metadata", None)) else None
        for key, value in trailing or ():
            if key == STATUS_DETAILS_KEY:
                raw = value
        return cls(code, message or details or code.name, raw)

    def details(self) -> list[any_pb2.Any]:
        if not self.raw_details:
            return []
        try:
            return list(status_pb2.Status.FromString(self.raw_details).details)
        except Exception:  # noqa: BLE001 - a peer's malformed details are dropped, not fatal
            return []


@dataclass(frozen=True)
class RowProblem:
    """One batch row that cannot be scored: `field` names the value within the row's customer
    ("features[2]" or "text"), `message` is what a single call for that customer would say."""

    row: int
    field: str
    message: str


# ----------------------------------------------------------------------------- the mapping


def status_of(exc: BaseException) -> tuple[grpc.StatusCode, str, list[any_pb2.Any]]:
    """(code, message, details) of any exception raised while answering a call."""
    if isinstance(exc, ServiceError):
        return exc.code, exc.message, exc.details()
    if isinstance(exc, grpc.RpcError):  # a downstream call not wrapped by its caller
        backend = BackendError.from_rpc_error(exc)
        return backend.code, backend.message, backend.details()
    return grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__}); it has been logged", []


def status_proto(code: grpc.StatusCode, message: str, details: Iterable[any_pb2.Any]) -> status_pb2.Status:
    return status_pb2.Status(code=code.value[0], message=message, details=list(details))


def trailing_metadata(code: grpc.StatusCode, message: str, details: Sequence[any_pb2.Any]
                      ) -> tuple[tuple[str, bytes], ...]:
    if not details:
        return ()
    return ((STATUS_DETAILS_KEY, status_proto(code, message, details).SerializeToString()),)


def log_failure(method: str, code: grpc.StatusCode, message: str, exc: BaseException,
                request_id: str | None = None) -> None:
    """One line per failed call: INFO for the caller's mistakes, WARNING when a dependency is
    down, ERROR with the failing line (never a whole traceback) for a bug."""
    rid = f" request_id={request_id}" if request_id else ""
    if code == grpc.StatusCode.INTERNAL and not isinstance(exc, (ServiceError, grpc.RpcError)):
        frames = traceback.extract_tb(exc.__traceback__)
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
        log.error("event=internal_error method=%s error=%s message=%r at=%s%s",
                  method, type(exc).__name__, str(exc)[:200], where, rid)
        return
    level = logging.WARNING if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL,
                                        grpc.StatusCode.UNKNOWN) else logging.INFO
    log.log(level, "event=rpc_error method=%s code=%s message=%r%s", method, code.name, message[:300], rid)


CODE_NAMES = {c.value[0]: c for c in grpc.StatusCode}
assert code_pb2.INVALID_ARGUMENT == grpc.StatusCode.INVALID_ARGUMENT.value[0]
