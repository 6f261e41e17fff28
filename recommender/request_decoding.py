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
    """Bytes that are not a valid message of the method's request type."""

    message_type: str
    reason: str

    def describe(self) -> str:
        return (f"request is not a valid {self.message_type}: {self.reason} "
                "(string fields such as text must be valid UTF-8)")


def lenient_decoder(message_class):
    def decode(data: bytes):
        try:
            return message_class.FromString(data)
        except protobuf_message.DecodeError as exc:
            return UndecodableRequest(message_class.DESCRIPTOR.full_name, str(exc) or "cannot be decoded")
    return decode


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
