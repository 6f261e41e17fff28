"""Tiny SavedModels with the serving signature (or deliberately broken ones) for tests.

The real model comes from the trainer (`trained_models_dir` fixture); these builders exist
for the cases the trainer never produces: a wrong signature, a wrong output shape, a
corrupt folder, a missing catalog, and a second version with predictable rankings.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from recommender import model_repository
from recommender.model_repository import ModelMetadata
from recommender.schema import DEFAULT_CATALOG


def build_tiny_model(folder: Path, favourite: int = 0, outputs: int = 10,
                     output_key: str = "probabilities", input_size: int = 6) -> Path:
    """Save a SavedModel whose `serving_default` maps float32[N, input_size] to softmax
    probabilities where class `favourite` always wins (then class order by interest)."""
    import tensorflow as tf

    class Tiny(tf.Module):
        def __init__(self):
            super().__init__()
            bias = np.linspace(0.0, -1.0, outputs).astype(np.float32)
            bias[favourite % outputs] = 3.0
            self.bias = tf.Variable(bias)
            self.kernel = tf.Variable(np.full((input_size, outputs), 1e-6, dtype=np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, input_size], tf.float32, name="features")])
        def serve(self, features):
            return {output_key: tf.nn.softmax(tf.matmul(features, self.kernel) + self.bias)}

    module = Tiny()
    folder.mkdir(parents=True, exist_ok=True)
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return folder


def publish_tiny_model(models_dir: Path, favourite: int = 0, **kwargs) -> int:
    """Build a tiny model with the default catalog and publish it as the next version."""
    staged = model_repository.staging_dir(models_dir)
    build_tiny_model(staged, favourite=favourite, **kwargs)
    model_repository.write_metadata(staged, ModelMetadata(catalog=DEFAULT_CATALOG, architecture="tiny-test"))
    return model_repository.publish(staged, models_dir)


def publish_corrupt_version(models_dir: Path) -> int:
    """A version folder whose saved_model.pb is garbage (metadata is fine)."""
    staged = model_repository.staging_dir(models_dir)
    (staged / "saved_model.pb").write_bytes(b"this is not a protobuf")
    model_repository.write_metadata(staged, ModelMetadata(catalog=DEFAULT_CATALOG))
    return model_repository.publish(staged, models_dir)


def publish_without_catalog(models_dir: Path) -> int:
    """A valid SavedModel whose metadata.json lacks the catalog."""
    staged = model_repository.staging_dir(models_dir)
    build_tiny_model(staged)
    (staged / model_repository.METADATA_FILE).write_text(json.dumps({"schema_version": "1"}))
    return model_repository.publish(staged, models_dir)
