"""recommender.v1.RecommendService for vectors (and MetadataService): thin methods that parse,
call the domain code (inference.scoring, the batcher, the model manager) and return.

Errors are recommender.errors raised by that code (bad input INVALID_ARGUMENT with its field,
an unknown pinned version NOT_FOUND, no model yet UNAVAILABLE); recommender.serving's wrappers
turn them into statuses and count every call. A bug is INTERNAL with one log line and never
kills the worker. A bad row of a batch is a row error in the answer, not a failed call.
"""

from __future__ import annotations

import asyncio
import logging

import grpc
import numpy as np

from inference import metadata, wire
from inference.batching import DynamicBatcher
from inference.manager import ModelManager, VersionNotLoaded
from inference.metrics import WorkerMetrics
from inference.scoring import batch_matrix, rank_one, score_batch, validate_vector
from recommender import errors
from recommender.schema import resolve_top_k
from recommender.serving import streaming, unary
from recommender.v1 import common_pb2, metadata_pb2_grpc, recommend_pb2, recommend_pb2_grpc

log = logging.getLogger("inference.servicer")

TEXT_NOT_ACCEPTED = ("text is vectorized by the gateway; send features to the inference server, "
                     "or call the gateway")
TEXTS_NOT_ACCEPTED = ("texts are vectorized by the gateway; send features to the inference server, "
                      "or call the gateway")
_BATCH_FIELDS = recommend_pb2.RecommendBatchResponse.DESCRIPTOR.fields_by_name
_INDICES = _BATCH_FIELDS["product_indices"].number
_SCORES = _BATCH_FIELDS["scores"].number
_FEATURES = _BATCH_FIELDS["features"].number
RECOMMEND_METHOD = "/" + recommend_pb2.DESCRIPTOR.services_by_name["RecommendService"].full_name + "/Recommend"


def _slots(f) -> common_pb2.CustomerSlots:
    return common_pb2.CustomerSlots(age=int(f[0]), gender=int(f[1]), budget=int(f[2]),
                                    interest=int(f[3]), purpose=int(f[4]), season=int(f[5]))


class RecommendCallsInFlight(grpc.aio.ServerInterceptor):
    """Reports every Recommend call to the dynamic batcher from the moment gRPC looks up its
    handler, before its request is read, until the call's task ends (the batcher's adaptive
    window opens only while another call is in flight: inference/batching.py)."""

    def __init__(self, batcher: DynamicBatcher):
        self.batcher = batcher

    async def intercept_service(self, continuation, handler_call_details):
        if handler_call_details.method == RECOMMEND_METHOD:
            self.batcher.track_call(asyncio.current_task())
        return await continuation(handler_call_details)


class _Recorded:
    """Counts each call in the worker's metrics (used by recommender.serving's wrappers)."""

    metrics: WorkerMetrics

    def record(self, method: str, code: grpc.StatusCode, seconds: float) -> None:
        self.metrics.observe_request(method, code.name, seconds, 0)


class RecommendServicer(_Recorded, recommend_pb2_grpc.RecommendServiceServicer):
    def __init__(self, manager: ModelManager, batcher: DynamicBatcher, metrics: WorkerMetrics,
                 max_batch_rows: int):
        self.manager = manager
        self.batcher = batcher
        self.metrics = metrics
        self.max_batch_rows = max_batch_rows

    @unary("Recommend")
    async def Recommend(self, request, context):
        if request.text:
            raise errors.InvalidArgument(TEXT_NOT_ACCEPTED, field="text")
        features = validate_vector(request.features)
        model = self.manager.get(request.model_version)
        k = resolve_top_k(request.top_k, len(model.catalog))
        probabilities = await self.batcher.submit(model, features)
        response = recommend_pb2.RecommendResponse(
            model_version=model.version, features=features, slots=_slots(features))
        catalog = model.catalog
        for position, (index, score) in enumerate(rank_one(probabilities, k), start=1):
            product = catalog[index]
            response.items.add(product_id=product.product_id, name=product.name_en,
                               name_ko=product.name_ko, score=score, rank=position)
        return response

    @unary("RecommendBatch")
    async def RecommendBatch(self, request, context):
        return self._batch(request)

    @streaming("RecommendStream")
    async def RecommendStream(self, request_iterator, context):
        index = 0
        async for request in request_iterator:
            try:
                response = self._batch(request.batch)
            except errors.ServiceError as exc:  # a malformed message ends the stream, named
                raise exc.prefixed(f"stream message {index}: ") from None
            index += 1
            yield recommend_pb2.RecommendStreamResponse(batch=response)

    def _batch(self, request):
        """Score a batch message in one model call; bad rows come back in `errors`."""
        if len(request.texts):
            raise errors.InvalidArgument(TEXTS_NOT_ACCEPTED, field="texts")
        matrix = batch_matrix(np.asarray(request.features, dtype=np.float32), self.max_batch_rows)
        model = self.manager.get(request.model_version)
        k = resolve_top_k(request.top_k, len(model.catalog))
        result = score_batch(model.predict, matrix, k)
        self.metrics.observe_batch(matrix.shape[0] - len(result.errors), "batch_rpc")
        self.metrics.observe_rows(matrix.shape[0])
        response = recommend_pb2.RecommendBatchResponse(
            model_version=model.version, top_k=k, rows=matrix.shape[0], product_ids=model.product_ids,
            product_names=model.product_names, product_names_ko=model.product_names_ko)
        indices = wire.packed_small_int32(_INDICES, result.indices)
        if indices is None:  # a catalog of more than 128 products: the slow, general path
            response.product_indices.extend(result.indices.ravel().tolist())
            indices = b""
        response.MergeFromString(indices + wire.packed_float(_SCORES, result.scores)
                                 + wire.packed_float(_FEATURES, matrix))
        for problem in result.errors:
            response.errors.add(row=problem.row, field=problem.field, message=problem.message)
        return response


class MetadataServicer(_Recorded, metadata_pb2_grpc.MetadataServiceServicer):
    """recommender.v1.MetadataService: this worker's versions and their state (inference.metadata)."""

    def __init__(self, manager: ModelManager, source, metrics: WorkerMetrics, max_batch_rows: int):
        self.manager = manager
        self.source = source  # inference.repository.VersionSource: published and failed versions
        self.metrics = metrics
        self.max_batch_rows = max_batch_rows

    @unary("GetMetadata")
    async def GetMetadata(self, request, context):
        loaded = {}
        for version in self.manager.versions():
            try:
                loaded[version] = self.manager.get(version)
            except VersionNotLoaded:  # unloaded between the two reads
                continue
        return metadata.describe(loaded, self.source.available(), self.source.failed, self.max_batch_rows)
