"""The network, its fixed input scaling, and the SavedModel export the inference server loads.

Callers always send the raw vector (years, codes, won); the scaling lives in the model as a
non-trainable first layer, so serving never normalizes:

    age       age / 100                          (0 stays 0 = not stated)
    gender    code / 2            | one-hot of 0..2   (--arch onehot)
    budget    log10(1 + won) - 5  (100,000 won -> 0, 1,000,000 -> 1, not stated -> -5)
    interest  code / 10           | one-hot of 0..10
    purpose   code / 2            | one-hot of 0..2
    season    code / 4            | one-hot of 0..4

Architectures: "seed" is the original network exactly (6 scaled inputs, Dense 30 ELU,
Dense 15 ELU, Dense N softmax); "onehot" is the same hidden layers on the one-hot encoding
(24 inputs).
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from recommender.schema import AGE, BUDGET, FEATURE_COUNT, SLOTS

ARCHITECTURES = ("seed", "onehot")
SIGNATURE_NAME = "serving_default"
INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"

_CODED = [s for s in SLOTS if s.coded]


class ScaleFeatures(keras.layers.Layer):
    """Raw customer vector -> network inputs. Fixed arithmetic, no weights."""

    def __init__(self, one_hot: bool = False, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.one_hot = one_hot

    def call(self, x):
        ops = keras.ops
        age = x[:, AGE : AGE + 1] / float(SLOTS[AGE].high)
        budget = ops.log1p(ops.maximum(x[:, BUDGET : BUDGET + 1], 0.0)) / math.log(10.0) - 5.0
        coded = []
        for slot in _CODED:
            column = x[:, slot.index]
            if self.one_hot:
                coded.append(ops.one_hot(ops.cast(ops.round(column), "int32"), slot.high + 1, dtype=x.dtype))
            else:
                coded.append(ops.expand_dims(column / float(slot.high), -1))
        if self.one_hot:
            return ops.concatenate([age, budget, *coded], axis=-1)
        # Keep the slot order of the raw vector for the seed network.
        gender, interest, purpose, season = coded
        return ops.concatenate([age, gender, budget, interest, purpose, season], axis=-1)

    def get_config(self):
        return {**super().get_config(), "one_hot": self.one_hot}


def build_model(arch: str, classes: int, learning_rate: float = 0.03) -> keras.Model:
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    inputs = keras.Input(shape=(FEATURE_COUNT,), dtype="float32", name=INPUT_NAME)
    x = ScaleFeatures(one_hot=arch == "onehot", name="scale_features")(inputs)
    x = keras.layers.Dense(30, activation="elu", name="hidden_30")(x)
    x = keras.layers.Dense(15, activation="elu", name="hidden_15")(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name=OUTPUT_NAME)(x)
    model = keras.Model(inputs, outputs, name=f"recommender_{arch}")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseTopKCategoricalAccuracy(k=3, name="top3_accuracy"),
        ],
    )
    return model


class _ServingModule(tf.Module):
    """Holds the trained model so its variables are saved, and exposes the exact names the
    inference server relies on: input `features` float32[None, 6] -> `probabilities`."""

    def __init__(self, model: keras.Model):
        super().__init__()
        self.model = model

    @tf.function(input_signature=[tf.TensorSpec([None, FEATURE_COUNT], tf.float32, name=INPUT_NAME)])
    def serve(self, features):
        return {OUTPUT_NAME: self.model(features, training=False)}


def export_saved_model(model: keras.Model, folder: str | Path) -> None:
    module = _ServingModule(model)
    tf.saved_model.save(module, str(folder), signatures={SIGNATURE_NAME: module.serve})


def load_serving_function(folder: str | Path):
    """The exported `serving_default` as a numpy -> numpy function (what a server would call)."""
    loaded = tf.saved_model.load(str(folder))
    signature = loaded.signatures[SIGNATURE_NAME]

    def predict(features: np.ndarray) -> np.ndarray:
        x = tf.constant(np.asarray(features, dtype=np.float32).reshape(-1, FEATURE_COUNT))
        return signature(**{INPUT_NAME: x})[OUTPUT_NAME].numpy()

    predict.loaded = loaded  # keep the object (and its variables) alive with the function
    return predict
