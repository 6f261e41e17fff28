"""Load one SavedModel version, check it serves the contract, compile it, warm it up.

A version must have `serving_default` taking `features` float32[None, 6] and returning
`probabilities` float32[None, len(catalog)], plus a catalog in metadata.json. Anything else
raises ModelLoadError (the caller logs it and keeps serving the current version).

Backends (measured on this model, see bench): the LiteRT/TFLite interpreter converted from
the same SavedModel costs ~3 us per call against ~200 us for a compiled concrete function
and XLA, because it skips the TensorFlow eager runtime. `auto` uses it when conversion
works and its output matches the SavedModel's; otherwise the concrete function.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from recommender import model_repository
from recommender.schema import FEATURE_COUNT, MAX_BATCH_ROWS, Catalog

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402  (after the log level is set)

log = logging.getLogger("inference.loader")

SIGNATURE = "serving_default"
INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"


class ModelLoadError(Exception):
    """A version that cannot serve; the message says why."""


def _bucket(rows: int) -> int:
    """Next power of two: the TFLite interpreters are allocated per bucket, once."""
    return 1 << max(0, (rows - 1).bit_length())


class TFLiteRunner:
    """One interpreter per power-of-two batch size, so no call reallocates tensors.
    Not thread-safe: a worker calls it from its event-loop thread only."""

    def __init__(self, flatbuffer: bytes, max_rows: int):
        self._flatbuffer = flatbuffer
        self._max_rows = max_rows
        self._by_bucket: dict[int, tuple] = {}
        for rows in self.buckets():
            self._interpreter(rows)

    def buckets(self) -> list[int]:
        out, rows = [], 1
        while rows < self._max_rows:
            out.append(rows)
            rows *= 2
        return out + [_bucket(self._max_rows)]

    def _interpreter(self, bucket: int):
        entry = self._by_bucket.get(bucket)
        if entry is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
                interpreter = tf.lite.Interpreter(model_content=self._flatbuffer, num_threads=1)
            runner = interpreter.get_signature_runner(SIGNATURE)
            # The frozen function has exactly one input and one output (names may differ).
            (in_detail,) = runner.get_input_details().values()
            (out_detail,) = runner.get_output_details().values()
            in_index, out_index = in_detail["index"], out_detail["index"]
            del runner  # it holds tensor references that would block resizing
            interpreter.resize_tensor_input(in_index, [bucket, FEATURE_COUNT], strict=False)
            interpreter.allocate_tensors()
            entry = (interpreter, in_index, out_index)
            self._by_bucket[bucket] = entry
        return entry

    def __call__(self, matrix: np.ndarray) -> np.ndarray:
        rows = matrix.shape[0]
        bucket = _bucket(rows)
        interpreter, in_index, out_index = self._interpreter(bucket)
        if bucket != rows:
            padded = np.zeros((bucket, FEATURE_COUNT), dtype=np.float32)
            padded[:rows] = matrix
            matrix = padded
        interpreter.set_tensor(in_index, matrix)
        interpreter.invoke()
        # get_tensor copies, so the result survives the next call.
        return interpreter.get_tensor(out_index)[:rows]


@dataclass
class LoadedModel:
    """A version ready to serve: `predict` maps float32[N, 6] to float32[N, classes]."""

    version: int
    catalog: Catalog
    predict: Callable[[np.ndarray], np.ndarray]
    backend: str
    load_seconds: float = 0.0
    product_ids: tuple[str, ...] = field(default=())
    product_names: tuple[str, ...] = field(default=())
    product_names_ko: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        # Computed once per version: every batch answer carries the catalog labels.
        self.product_ids = self.catalog.product_ids
        self.product_names = tuple(p.name_en for p in self.catalog)
        self.product_names_ko = tuple(p.name_ko for p in self.catalog)


def _check_signature(loaded, classes: int):
    signatures = getattr(loaded, "signatures", {})
    if SIGNATURE not in signatures:
        raise ModelLoadError(f"has no {SIGNATURE!r} signature (found: {sorted(signatures)})")
    fn = signatures[SIGNATURE]
    _, kwargs = fn.structured_input_signature
    spec = kwargs.get(INPUT_NAME)
    if spec is None or len(kwargs) != 1:
        raise ModelLoadError(f"{SIGNATURE} must take exactly one input {INPUT_NAME!r}, takes {sorted(kwargs)}")
    if spec.dtype != tf.float32 or spec.shape.rank != 2 or spec.shape[1] != FEATURE_COUNT:
        raise ModelLoadError(f"{SIGNATURE} input must be float32[None, {FEATURE_COUNT}], is {spec.dtype.name}{spec.shape}")
    outputs = fn.structured_outputs
    if OUTPUT_NAME not in outputs:
        raise ModelLoadError(f"{SIGNATURE} must return {OUTPUT_NAME!r}, returns {sorted(outputs)}")
    out = outputs[OUTPUT_NAME]
    if out.shape.rank != 2 or out.shape[1] != classes:
        raise ModelLoadError(
            f"{SIGNATURE} output must be float32[None, {classes}] (the catalog has {classes} products), "
            f"is {out.dtype.name}{out.shape}"
        )
    return fn


def warmup_matrix(rows: int = 64, seed: int = 0) -> np.ndarray:
    """Valid vectors (incl. all-zero 'not stated' rows) to exercise and compare backends."""
    rng = np.random.default_rng(seed)
    m = np.column_stack([
        rng.integers(0, 101, rows), rng.integers(0, 3, rows), rng.integers(0, 3_000_000, rows),
        rng.integers(0, 11, rows), rng.integers(0, 3, rows), rng.integers(0, 5, rows),
    ]).astype(np.float32)
    m[0] = 0
    return m


def _tf_backend(fn, jit: bool) -> Callable[[np.ndarray], np.ndarray]:
    compiled = tf.function(lambda x: fn(**{INPUT_NAME: x})[OUTPUT_NAME], jit_compile=jit)
    concrete = compiled.get_concrete_function(tf.TensorSpec([None, FEATURE_COUNT], tf.float32))
    return lambda matrix: concrete(tf.constant(matrix)).numpy()


def _tflite_flatbuffer(loaded, fn) -> bytes:
    """Convert the signature with its variables frozen into constants. Converting the
    SavedModel directly keeps resource variables that the interpreter never initializes
    (the trainer's model then returns NaN), so freeze first."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    single = tf.function(lambda x: fn(**{INPUT_NAME: x})[OUTPUT_NAME]).get_concrete_function(
        tf.TensorSpec([None, FEATURE_COUNT], tf.float32, name=INPUT_NAME))
    frozen = convert_variables_to_constants_v2(single)
    return tf.lite.TFLiteConverter.from_concrete_functions([frozen], loaded).convert()


def load_version(version_dir: str | os.PathLike, version: int, backend: str = "auto",
                 max_rows: int = MAX_BATCH_ROWS) -> LoadedModel:
    """Load, validate, compile and warm up one version, or raise ModelLoadError."""
    started = time.perf_counter()
    try:
        catalog = model_repository.read_metadata(version_dir).catalog
    except ValueError as exc:
        raise ModelLoadError(f"metadata: {exc}") from exc
    try:
        loaded = tf.saved_model.load(str(version_dir))
    except Exception as exc:  # TF raises many types for a corrupt folder
        raise ModelLoadError(f"SavedModel does not load: {type(exc).__name__}: {str(exc)[:300]}") from exc
    fn = _check_signature(loaded, len(catalog))

    sample = warmup_matrix()
    try:
        reference = fn(**{INPUT_NAME: tf.constant(sample)})[OUTPUT_NAME].numpy()
    except Exception as exc:
        raise ModelLoadError(f"{SIGNATURE} fails on valid vectors: {exc}") from exc
    if reference.shape != (len(sample), len(catalog)) or not np.isfinite(reference).all():
        raise ModelLoadError(f"{SIGNATURE} returned shape {reference.shape} or non-finite values")

    predict, chosen = None, backend
    if backend in ("auto", "tflite"):
        try:
            flatbuffer = _tflite_flatbuffer(loaded, fn)
            runner = TFLiteRunner(flatbuffer, max_rows)
            if not np.allclose(runner(sample), reference, atol=1e-5):
                raise ModelLoadError("TFLite output differs from the SavedModel's")
            predict, chosen = runner, "tflite"
        except Exception as exc:
            if backend == "tflite":
                raise ModelLoadError(f"TFLite conversion failed: {exc}") from exc
            log.warning("event=tflite_unavailable version=%s reason=%r; using the concrete function",
                        version, str(exc)[:200])
    if predict is None:
        chosen = "xla" if backend == "xla" else "function"
        predict = _tf_backend(fn, jit=chosen == "xla")

    # Warm-up: every batch shape class once, so the first requests pay no tracing/allocation.
    for rows in (1, 2, 3, 8, 64, 256, 1000):
        out = predict(np.resize(sample, (rows, FEATURE_COUNT)))
        if out.shape != (rows, len(catalog)):
            raise ModelLoadError(f"warm-up returned shape {out.shape} for {rows} rows")
    if not np.allclose(predict(sample), reference, atol=1e-5):
        raise ModelLoadError(f"{chosen} backend output differs from the SavedModel's")
    return LoadedModel(version=version, catalog=catalog, predict=predict, backend=chosen,
                       load_seconds=time.perf_counter() - started)
