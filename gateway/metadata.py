"""recommender.v1.MetadataService on the gateway: the inference backend's answer (its model
versions, catalog, signature), marked as the gateway's, with the vectorizer that reads text here.

The gateway holds no model, so it asks the backend on every call (a cheap RPC, no scoring):
what it reports is what a Recommend through this gateway would be scored with.
"""

from __future__ import annotations

from gateway import conversions
from recommender.v1 import metadata_pb2


def gateway_view(backend: metadata_pb2.GetMetadataResponse, vectorizer_name: str | None
                 ) -> metadata_pb2.GetMetadataResponse:
    """The backend's metadata as the gateway reports it (a copy; the backend's answer is kept)."""
    answer = metadata_pb2.GetMetadataResponse()
    answer.CopyFrom(backend)
    answer.server = "gateway"
    answer.vectorizer = conversions.vectorizer_enum(vectorizer_name)
    return answer
