"""Python client of the recommender gRPC API (package recommender.v1).

    from recommender_client import RecommenderClient

    with RecommenderClient("127.0.0.1:50051") as client:
        for item in client.recommend(features=[35, 1, 300_000, 2, 1, 0]).items:
            print(item.rank, item.product_id, round(item.score, 3))

AsyncRecommenderClient offers the same calls as coroutines (grpc.aio). The generated messages
and stubs are importable as `recommender.v1.*_pb2` / `*_pb2_grpc`.
"""

from ._channel import CA_ENV, TOKEN_ENV, service_config
from .aio import AsyncRecommenderClient
from .client import RecommenderClient
from .errors import (
    DeadlineExceeded,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RecommenderError,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    error_from_rpc,
)
from .results import (
    BatchResult,
    ChatTurn,
    Item,
    Metadata,
    ModelVersion,
    Product,
    Recommendation,
    Vectorized,
    batch_request,
)

__version__ = "1.0.0"

__all__ = [
    "CA_ENV", "TOKEN_ENV", "AsyncRecommenderClient", "BatchResult", "ChatTurn", "DeadlineExceeded",
    "FieldViolation", "InvalidArgument", "Item", "Metadata", "ModelVersion", "NotFound", "PermissionDenied",
    "Product", "Recommendation", "RecommenderClient", "RecommenderError", "ResourceExhausted",
    "Unauthenticated", "Unavailable", "Unimplemented", "Vectorized", "batch_request", "error_from_rpc",
    "service_config",
]
