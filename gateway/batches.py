"""A batch of texts becomes ONE forwarded vector batch: each text is vectorized here, rows whose
text is invalid are kept out of the forwarded batch and reported in `errors` (row, field
"texts[i]", message), and the backend's answer is spread back over all rows. Plain Python:
no gRPC calls here."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from gateway.vectorizers.base import CACHE, VectorizeResult, VectorizerUnavailable
from recommender import errors, schema
from recommender.v1 import recommend_pb2


@dataclass
class PreparedBatch:
    """A caller's batch after vectorizing: what to forward and how to map the answer back."""

    rows: int  # N, rows in the caller's request
    request: recommend_pb2.RecommendBatchRequest | None  # to forward; None when no row is valid
    forwarded_rows: list[int] = field(default_factory=list)  # caller row of each forwarded row
    errors: list[errors.RowProblem] = field(default_factory=list)  # rows rejected here
    all_features: list[float] = field(default_factory=list)  # N*6, zeros for rejected rows
    vectorizer: str = ""  # the vectorizer that answered most rows ('' for feature batches)
    top_k: int = 0  # the resolved top_k (used when nothing is forwarded)


def prepare_text_batch(texts: Sequence[str], top_k: int, model_version: int,
                       vectorize: Callable[[str], VectorizeResult],
                       pool: ThreadPoolExecutor | None = None) -> PreparedBatch:
    """Vectorize each text (through `pool` when the vectorizer is a slow remote one).

    Raises VectorizerUnavailable when the vectorizer cannot answer at all: the caller gets
    UNAVAILABLE for the batch and can retry it whole, rather than rows silently missing."""
    resolved_top_k = schema.resolve_top_k(top_k)

    def one(text: str) -> VectorizeResult | errors.InvalidArgument:
        try:
            return vectorize(schema.validate_text(text))
        except errors.InvalidArgument as exc:
            return exc
        except (errors.ServiceError, VectorizerUnavailable):
            raise  # the vectorizer cannot answer at all: the batch is UNAVAILABLE, retry it whole
        except Exception as exc:  # noqa: BLE001 - a bug on one text must not fail 999 others
            code, message, _ = errors.status_of(exc)
            errors.log_failure("RecommendBatch.vectorize", code, message, exc)
            return errors.InvalidArgument("text could not be read (an internal error, logged); "
                                          "the other rows are scored")

    results = list(pool.map(one, texts)) if pool is not None else [one(t) for t in texts]
    prepared = PreparedBatch(rows=len(texts), request=None, top_k=resolved_top_k)
    flat: list[float] = []
    answered_by: Counter[str] = Counter()
    for row, result in enumerate(results):
        if isinstance(result, errors.InvalidArgument):
            prepared.errors.append(errors.RowProblem(row, f"texts[{row}]", result.message))
            prepared.all_features.extend([0.0] * schema.FEATURE_COUNT)
            continue
        prepared.forwarded_rows.append(row)
        flat.extend(result.features)
        prepared.all_features.extend(result.features)
        answered_by[result.vectorizer] += 1
    if answered_by:
        # A batch reports one vectorizer: the backend that answered most rows, not the cache.
        non_cache = [(n, c) for n, c in answered_by.most_common() if n != CACHE]
        prepared.vectorizer = (non_cache or answered_by.most_common())[0][0]
    if flat:
        prepared.request = recommend_pb2.RecommendBatchRequest(
            features=flat, top_k=top_k, model_version=model_version)
    return prepared


def merge_batch(prepared: PreparedBatch, answer: recommend_pb2.RecommendBatchResponse | None,
                vectorizer_enum: int) -> recommend_pb2.RecommendBatchResponse:
    """The caller's N-row response from the backend's answer for the forwarded rows."""
    n = prepared.rows
    k = answer.top_k if answer is not None else prepared.top_k
    indices = np.full((n, k), -1, dtype=np.int32)
    scores = np.zeros((n, k), dtype=np.float32)
    rows = [recommend_pb2.RowError(row=e.row, field=e.field, message=e.message) for e in prepared.errors]
    response = recommend_pb2.RecommendBatchResponse(top_k=k, rows=n, vectorizer=vectorizer_enum)
    if answer is not None:
        forwarded = np.asarray(prepared.forwarded_rows, dtype=np.int64)
        indices[forwarded] = np.asarray(answer.product_indices, dtype=np.int32).reshape(-1, k)
        scores[forwarded] = np.asarray(answer.scores, dtype=np.float32).reshape(-1, k)
        for error in answer.errors:  # a vector the backend refused: name its text
            row = int(forwarded[error.row])
            rows.append(recommend_pb2.RowError(row=row, field=f"texts[{row}]", message=error.message))
        response.model_version = answer.model_version
        response.product_ids.extend(answer.product_ids)
        response.product_names.extend(answer.product_names)
        response.product_names_ko.extend(answer.product_names_ko)
    rows.sort(key=lambda e: e.row)
    response.product_indices.extend(indices.ravel().tolist())
    response.scores.extend(scores.ravel().tolist())
    response.features.extend(prepared.all_features)
    response.errors.extend(rows)
    return response
