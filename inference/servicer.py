"""recommender.v1.RecommendService for vectors: parse, call the domain code, map errors.

Bad input is INVALID_ARGUMENT, an unknown pinned version NOT_FOUND, no model yet
UNAVAILABLE; a bug surfaces as INTERNAL with its type, but never kills the worker.
"""

from __future__ import annotations

import logging
import time

import grpc
import numpy as np

from inference import metadata, wire
from inference.batching import DynamicBatcher
from inference.manager import ModelManager, NoModelLoaded, VersionNotLoaded
from inference.metrics import WorkerMetrics
from inference.scoring import InvalidRequest, batch_matrix, rank_one, score_batch, validate_vector
from recommender.request_decoding import UndecodableRequest
from recommender.schema import InvalidFeatures, resolve_top_k
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


class RpcFailure(Exception):
    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


def _decoded(request):
    """The request, unless its bytes could not be decoded (see recommender.request_decoding)."""
    if isinstance(request, UndecodableRequest):
        raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, request.describe())
    return request


def _model(manager: ModelManager, version: int):
    try:
        return manager.get(version)
    except VersionNotLoaded as exc:
        raise RpcFailure(grpc.StatusCode.NOT_FOUND, str(exc)) from None
    except NoModelLoaded as exc:
        raise RpcFailure(grpc.StatusCode.UNAVAILABLE, str(exc)) from None


def _top_k(top_k: int, model) -> int:
    try:
        return resolve_top_k(top_k, len(model.catalog))
    except ValueError as exc:
        raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None


def _slots(f) -> common_pb2.CustomerSlots:
    return common_pb2.CustomerSlots(age=int(f[0]), gender=int(f[1]), budget=int(f[2]),
                                    interest=int(f[3]), purpose=int(f[4]), season=int(f[5]))


class RecommendServicer(recommend_pb2_grpc.RecommendServiceServicer):
    def __init__(self, manager: ModelManager, batcher: DynamicBatcher, metrics: WorkerMetrics,
                 max_batch_rows: int):
        self.manager = manager
        self.batcher = batcher
        self.metrics = metrics
        self.max_batch_rows = max_batch_rows

    # ------------------------------------------------------------------ Recommend

    async def Recommend(self, request, context):
        started = time.perf_counter()
        try:
            response = await self._recommend(request)
        except Exception as exc:
            await self._fail("Recommend", exc, started, context)
        self.metrics.observe_request("Recommend", "OK", time.perf_counter() - started, 0)
        return response

    async def _recommend(self, request):
        _decoded(request)
        if request.text:
            raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, TEXT_NOT_ACCEPTED)
        try:
            features = validate_vector(request.features)
        except InvalidFeatures as exc:
            raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        model = _model(self.manager, request.model_version)
        k = _top_k(request.top_k, model)
        probabilities = await self.batcher.submit(model, features)
        response = recommend_pb2.RecommendResponse(
            model_version=model.version, features=features, slots=_slots(features))
        catalog = model.catalog
        for position, (index, score) in enumerate(rank_one(probabilities, k), start=1):
            product = catalog[index]
            response.items.add(product_id=product.product_id, name=product.name_en,
                               name_ko=product.name_ko, score=score, rank=position)
        return response

    # ------------------------------------------------------------------ batches

    async def RecommendBatch(self, request, context):
        started = time.perf_counter()
        try:
            response = self._batch(request)
        except Exception as exc:
            await self._fail("RecommendBatch", exc, started, context)
        self.metrics.observe_request("RecommendBatch", "OK", time.perf_counter() - started, response.rows)
        return response

    async def RecommendStream(self, request_iterator, context):
        started = time.perf_counter()
        answered = 0
        try:
            async for request in request_iterator:
                response = self._batch(_decoded(request).batch)
                answered += response.rows
                yield recommend_pb2.RecommendStreamResponse(batch=response)
        except Exception as exc:
            await self._fail("RecommendStream", exc, started, context)
        self.metrics.observe_request("RecommendStream", "OK", time.perf_counter() - started, answered)

    def _batch(self, request):
        _decoded(request)
        if len(request.texts):
            raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, TEXTS_NOT_ACCEPTED)
        try:
            matrix = batch_matrix(np.asarray(request.features, dtype=np.float32), self.max_batch_rows)
        except InvalidRequest as exc:
            raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        model = _model(self.manager, request.model_version)
        k = _top_k(request.top_k, model)
        result = score_batch(model.predict, matrix, k)
        self.metrics.observe_batch(matrix.shape[0] - len(result.errors), "batch_rpc")
        response = recommend_pb2.RecommendBatchResponse(
            model_version=model.version, top_k=k, rows=matrix.shape[0], product_ids=model.product_ids,
            product_names=model.product_names, product_names_ko=model.product_names_ko)
        indices = wire.packed_small_int32(_INDICES, result.indices)
        if indices is None:  # a catalog of more than 128 products: the slow, general path
            response.product_indices.extend(result.indices.ravel().tolist())
            indices = b""
        response.MergeFromString(indices + wire.packed_float(_SCORES, result.scores)
                                 + wire.packed_float(_FEATURES, matrix))
        for error in result.errors:
            response.errors.add(row=error.row, message=str(error))
        return response

    # ------------------------------------------------------------------ errors

    async def _fail(self, method: str, exc: Exception, started: float, context) -> None:
        if isinstance(exc, RpcFailure):
            code, message = exc.code, str(exc)
        else:
            # A bug, not bad input: say so, keep the worker alive, log the traceback.
            log.exception("event=unexpected_error method=%s", method)
            code, message = grpc.StatusCode.INTERNAL, f"unexpected {type(exc).__name__}; see the server log"
        self.metrics.observe_request(method, code.name, time.perf_counter() - started, 0)
        await context.abort(code, message)


class MetadataServicer(metadata_pb2_grpc.MetadataServiceServicer):
    """recommender.v1.MetadataService: this worker's versions and their state (inference.metadata)."""

    def __init__(self, manager: ModelManager, source, metrics: WorkerMetrics, max_batch_rows: int):
        self.manager = manager
        self.source = source  # inference.repository.VersionSource: published and failed versions
        self.metrics = metrics
        self.max_batch_rows = max_batch_rows

    async def GetMetadata(self, request, context):
        started = time.perf_counter()
        loaded = {}
        for version in self.manager.versions():
            try:
                loaded[version] = self.manager.get(version)
            except VersionNotLoaded:  # unloaded between the two reads
                continue
        response = metadata.describe(loaded, self.source.available(), self.source.failed, self.max_batch_rows)
        self.metrics.observe_request("GetMetadata", "OK", time.perf_counter() - started, 0)
        return response
