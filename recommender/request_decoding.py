"""Registering servicers with request decoding that reports bad bytes as INVALID_ARGUMENT.

The generated `add_*Servicer_to_server` functions decode requests with `FromString`; when a
client sends a string field that is not valid UTF-8 (the contract says such text is rejected
with a clear message), protobuf raises and grpc answers INTERNAL "Exception deserializing
request!". Here the decoder returns an `UndecodableRequest` instead, and the servicer wrappers
(gateway.servicers.unary / streaming, inference.servicer) turn it into INVALID_ARGUMENT
naming the problem. Shared by both servers, so it lives in the common library.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf import message as protobuf_message
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor


@dataclass(frozen=True)
class UndecodableRequest:
    """Bytes that are not a valid message of the method's request type. `field` is the path
    of the first string field that is not UTF-8 (e.g. "batch.texts[3]"), if that is the cause."""

    message_type: str
    reason: str
    field: str | None = None

    def describe(self) -> str:
        if self.field:
            return (f"{self.field} must be valid UTF-8 text "
                    f"(the request is not a valid {self.message_type})")
        return (f"request is not a valid {self.message_type}: {self.reason} "
                "(string fields such as text must be valid UTF-8)")


def lenient_decoder(message_class):
    def decode(data: bytes):
        try:
            return message_class.FromString(data)
        except protobuf_message.DecodeError as exc:
            return UndecodableRequest(message_class.DESCRIPTOR.full_name, str(exc) or "cannot be decoded",
                                      _first_bad_string(message_class.DESCRIPTOR, data))
    return decode


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _first_bad_string(descriptor, data: bytes, prefix: str = "") -> str | None:
    """Walk the wire format for the first string field that is not valid UTF-8 (protobuf's
    own error does not say which field it was). None when the bytes are broken otherwise."""
    counts: dict[int, int] = {}
    pos = 0
    try:
        while pos < len(data):
            tag, pos = _varint(data, pos)
            number, wire_type = tag >> 3, tag & 7
            if wire_type == 0:
                _, pos = _varint(data, pos)
                continue
            if wire_type in (1, 5):
                pos += 8 if wire_type == 1 else 4
                continue
            if wire_type != 2:
                return None
            length, pos = _varint(data, pos)
            chunk, pos = data[pos:pos + length], pos + length
            field = descriptor.fields_by_number.get(number)
            if field is None:
                continue
            index = counts.get(number, 0)
            counts[number] = index + 1
            repeated = getattr(field, "is_repeated", None)
            repeated = repeated if repeated is not None else field.label == field.LABEL_REPEATED
            path = f"{prefix}{field.name}" + (f"[{index}]" if repeated else "")
            if field.type == field.TYPE_STRING:
                try:
                    chunk.decode("utf-8")
                except UnicodeDecodeError:
                    return path
            elif field.type == field.TYPE_MESSAGE:
                found = _first_bad_string(field.message_type, chunk, path + ".")
                if found:
                    return found
    except ValueError:
        return None
    return None


def add_servicer(servicer, service: ServiceDescriptor, server) -> None:
    """Register every method of `service` implemented by `servicer` (same names as the
    generated code), decoding requests with `lenient_decoder`."""
    handlers = {}
    for method in service.methods:
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        make = {
            (False, False): grpc.unary_unary_rpc_method_handler,
            (False, True): grpc.unary_stream_rpc_method_handler,
            (True, False): grpc.stream_unary_rpc_method_handler,
            (True, True): grpc.stream_stream_rpc_method_handler,
        }[(method.client_streaming, method.server_streaming)]
        handlers[method.name] = make(
            getattr(servicer, method.name),
            request_deserializer=lenient_decoder(request_class),
            response_serializer=response_class.SerializeToString,
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
