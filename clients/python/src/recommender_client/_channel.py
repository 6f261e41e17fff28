"""Channel construction shared by the sync and asyncio clients: TLS, the bearer token, request
ids, message size limits, and retries with exponential backoff on UNAVAILABLE, declared in
the gRPC service config so the gRPC library itself retries (also before a stream's first answer)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import grpc

# Environment defaults (the names every client of the project reads).
TOKEN_ENV = "RECOMMENDER_TOKEN"
CA_ENV = "RECOMMENDER_CA"

# Batches of 10,000 rows are about 1 MB each way; leave headroom over gRPC's 4 MB default.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

SERVICES = ("recommender.v1.RecommendService", "recommender.v1.VectorizeService",
            "recommender.v1.ChatService", "recommender.v1.MetadataService")


def service_config(max_attempts: int = 4, initial_backoff_s: float = 0.1, max_backoff_s: float = 2.0,
                   backoff_multiplier: float = 2.0) -> str:
    """gRPC service config: every recommender.v1 call (all are idempotent) is retried on
    UNAVAILABLE up to `max_attempts` tries in all, with jittered exponential backoff.
    max_attempts=1 turns retries off."""
    config = {"methodConfig": [{"name": [{"service": s} for s in SERVICES]}]}
    if max_attempts > 1:
        config["methodConfig"][0]["retryPolicy"] = {
            "maxAttempts": max_attempts,
            "initialBackoff": f"{initial_backoff_s}s",
            "maxBackoff": f"{max_backoff_s}s",
            "backoffMultiplier": backoff_multiplier,
            "retryableStatusCodes": ["UNAVAILABLE"],
        }
    return json.dumps(config)


def _read(path: str | None) -> bytes | None:
    if not path:
        return None
    with open(path, "rb") as f:
        return f.read()


@dataclass(frozen=True)
class ChannelSettings:
    """How to reach the server. Built by the clients from their keyword arguments."""

    target: str
    tls: bool
    root_certificates: bytes | None
    client_certificate: bytes | None
    client_key: bytes | None
    token: str | None
    server_name: str | None
    max_attempts: int
    metadata: tuple[tuple[str, str], ...]

    @classmethod
    def build(cls, target: str, *, tls: bool | None = None, ca_file: str | None = None,
              root_certificates: bytes | None = None, client_cert_file: str | None = None,
              client_key_file: str | None = None, token: str | None = None,
              server_name: str | None = None, max_attempts: int = 4,
              metadata: Sequence[tuple[str, str]] = ()) -> ChannelSettings:
        """Unset `token` and `ca_file` default to $RECOMMENDER_TOKEN and $RECOMMENDER_CA (pass ""
        to ignore them; tls=False ignores $RECOMMENDER_CA). TLS is on when asked (`tls=True`,
        system roots unless a CA is given) or when a CA or client certificate is given."""
        if token is None:
            token = os.environ.get(TOKEN_ENV) or None
        if ca_file is None and root_certificates is None and tls is not False:
            ca_file = os.environ.get(CA_ENV) or None
        if bool(client_cert_file) != bool(client_key_file):
            raise ValueError("pass both client_cert_file= and client_key_file= (mutual TLS), or neither")
        if root_certificates is None:
            root_certificates = _read(ca_file)
        if tls is None:
            tls = bool(root_certificates or client_cert_file)
        elif not tls and (root_certificates or client_cert_file):
            raise ValueError("tls=False with a CA or client certificate: drop tls=False or the certificates")
        return cls(target=target, tls=tls, root_certificates=root_certificates,
                   client_certificate=_read(client_cert_file), client_key=_read(client_key_file),
                   token=token or None, server_name=server_name, max_attempts=max_attempts,
                   metadata=tuple(metadata))

    def options(self) -> list[tuple[str, object]]:
        options: list[tuple[str, object]] = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.enable_retries", 1 if self.max_attempts > 1 else 0),
            ("grpc.service_config", service_config(self.max_attempts)),
        ]
        if self.server_name:
            options.append(("grpc.ssl_target_name_override", self.server_name))
        return options

    def credentials(self) -> grpc.ChannelCredentials | None:
        if not self.tls:
            return None
        return grpc.ssl_channel_credentials(root_certificates=self.root_certificates,
                                            private_key=self.client_key,
                                            certificate_chain=self.client_certificate)

    def call_metadata(self, request_id: str | None) -> tuple[str, tuple[tuple[str, str], ...]]:
        """(the request id, the metadata of one call): x-request-id (given or a fresh one), the
        bearer token, and the client's extra metadata."""
        request_id = request_id or uuid.uuid4().hex
        metadata = [("x-request-id", request_id), *self.metadata]
        if self.token:
            # As plain metadata rather than call credentials, so it also works on plaintext
            # channels to a local server; use TLS for anything that leaves the machine.
            metadata.append(("authorization", f"Bearer {self.token}"))
        return request_id, tuple(metadata)
