"""The project's Python client is the `recommender-client` distribution (clients/python, package
`recommender_client`), installed by `make setup`; this module re-exports it so the project's
programs (chat, batch) and other services use one client. See README, "Use it from another service".
"""

from recommender_client import (  # noqa: F401  (re-exports)
    AsyncRecommenderClient,
    BatchResult,
    ChatTurn,
    DeadlineExceeded,
    FieldViolation,
    InvalidArgument,
    Item,
    Metadata,
    NotFound,
    PermissionDenied,
    Recommendation,
    RecommenderClient,
    RecommenderError,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    Vectorized,
    batch_request,
    error_from_rpc,
)
