"""How the batch engines reach a gRPC server: target, TLS, CA file and bearer token.

`--token` defaults to $RECOMMENDER_TOKEN and `--ca` to $RECOMMENDER_CA (a PEM file; it
implies TLS). The token is sent as `authorization: Bearer ...` metadata on every call and
never logged.
"""

from __future__ import annotations

import os

from clients.client import RecommenderClient

TOKEN_ENV = "RECOMMENDER_TOKEN"
CA_ENV = "RECOMMENDER_CA"


def default_token() -> str | None:
    return os.environ.get(TOKEN_ENV) or None


def default_ca() -> str | None:
    return os.environ.get(CA_ENV) or None


def make_client(target: str, *, tls: bool = False, timeout: float = 10.0, token: str | None = None,
                ca_path: str | None = None) -> RecommenderClient:
    """A RecommenderClient with these options (unset token/CA: the client's own defaults,
    $RECOMMENDER_TOKEN and $RECOMMENDER_CA)."""
    return RecommenderClient(target, timeout=timeout, tls=True if tls else None, ca_file=ca_path, token=token)
