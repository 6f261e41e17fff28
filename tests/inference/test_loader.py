"""Loading and validating SavedModel versions (TensorFlow in-process, no server)."""

from __future__ import annotations

import numpy as np
import pytest

from recommender import model_repository
from recommender.model_repository import ModelMetadata
from recommender.schema import DEFAULT_CATALOG
from tests.inference.model_builder import (
    build_tiny_model,
    publish_corrupt_version,
    publish_tiny_model,
    publish_without_catalog,
)

loader = pytest.importorskip("inference.loader")


@pytest.mark.parametrize("backend", ["tflite", "function", "xla"])
def test_every_backend_matches_the_saved_model(served_models_dir, backend):
    import tensorflow as tf

    folder = model_repository.version_dir(served_models_dir, 1)
    model = loader.load_version(folder, 1, backend=backend)
    assert model.backend == backend and model.product_ids == model.catalog.product_ids
    matrix = loader.warmup_matrix(rows=300, seed=3)
    expected = tf.saved_model.load(str(folder)).signatures["serving_default"](
        features=tf.constant(matrix))["probabilities"].numpy()
    np.testing.assert_allclose(model.predict(matrix), expected, atol=1e-5)
    # odd sizes use padded TFLite buckets: the padding must not leak into results
    np.testing.assert_allclose(model.predict(matrix[:3]), expected[:3], atol=1e-5)


def test_auto_prefers_tflite(served_models_dir):
    model = loader.load_version(model_repository.version_dir(served_models_dir, 1), 1)
    assert model.backend == "tflite"


def _staged_with_catalog(tmp_path, **kwargs):
    folder = build_tiny_model(tmp_path / "v", **kwargs)
    model_repository.write_metadata(folder, ModelMetadata(catalog=DEFAULT_CATALOG))
    return folder


@pytest.mark.parametrize("kwargs,message", [
    ({"outputs": 7}, "output must be float32\\[None, 10\\]"),
    ({"output_key": "scores"}, "must return 'probabilities'"),
    ({"input_size": 5}, "input must be float32\\[None, 6\\]"),
])
def test_wrong_signature_is_rejected_with_reason(tmp_path, kwargs, message):
    with pytest.raises(loader.ModelLoadError, match=message):
        loader.load_version(_staged_with_catalog(tmp_path, **kwargs), 1)


def test_corrupt_and_catalogless_versions_are_rejected(tmp_path):
    corrupt = publish_corrupt_version(tmp_path)
    with pytest.raises(loader.ModelLoadError, match="SavedModel does not load"):
        loader.load_version(model_repository.version_dir(tmp_path, corrupt), corrupt)
    no_catalog = publish_without_catalog(tmp_path)
    with pytest.raises(loader.ModelLoadError, match="metadata: metadata has no catalog"):
        loader.load_version(model_repository.version_dir(tmp_path, no_catalog), no_catalog)


def test_tiny_model_ranks_its_favourite_first(tmp_path):
    version = publish_tiny_model(tmp_path, favourite=4)
    model = loader.load_version(model_repository.version_dir(tmp_path, version), version)
    assert np.argmax(model.predict(np.zeros((2, 6), dtype=np.float32)), axis=1).tolist() == [4, 4]
