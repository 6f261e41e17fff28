"""What every vectorizer is: text in, a contract-valid 6-float vector out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# Names used in logs, metrics and mapped to recommender.v1.Vectorizer in responses.
LOCAL = "local"
BEDROCK_FLOW = "bedrock-flow"
BEDROCK_CONVERSE = "bedrock-converse"
CACHE = "cache"
NAMES = (LOCAL, BEDROCK_FLOW, BEDROCK_CONVERSE)


@dataclass(frozen=True)
class VectorizeResult:
    features: tuple[float, ...]  # 6 floats, already validated with recommender.schema
    vectorizer: str  # one of LOCAL, BEDROCK_FLOW, BEDROCK_CONVERSE, CACHE
    language: str  # "ko" or "en"
    # False when the purpose was only inferred (the local vectorizer reads a bare
    # self-description such as "50대" or "hiking" as own use): a conversation that already
    # has a purpose keeps it. True when stated outright or when the vectorizer cannot tell.
    purpose_stated: bool = True


class Vectorizer(Protocol):
    name: str

    def vectorize(self, text: str) -> VectorizeResult:
        """Text already checked by recommender.schema.validate_text.

        Raises VectorizerUnavailable when the backend cannot answer (the gateway maps it to
        UNAVAILABLE or falls back) and InvalidModelOutput when it answered garbage."""
        ...


class VectorizerUnavailable(Exception):
    """The backend could not produce a vector (throttled, timed out, no credentials, down)."""


class InvalidModelOutput(VectorizerUnavailable):
    """The backend answered, but not with a vector that passes the contract."""
