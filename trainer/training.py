"""One training run: split, fit with early stopping, score, export, publish a new version.

Everything is written into a staging folder of the model repository and renamed into place
only when complete (recommender.model_repository.publish); any failure discards the staging
folder, so no version appears.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from recommender import model_repository
from trainer import metrics as scoring
from trainer import plots
from trainer.data import Dataset
from trainer.model import build_model, export_saved_model
from trainer.progress import EpochProgress

log = logging.getLogger("trainer")

VALIDATION_SHARE = 0.10


@dataclass
class TrainingConfig:
    epochs: int = 100
    batch_size: int = 5000
    seed: int = 42
    arch: str = "onehot"
    learning_rate: float = 0.03
    patience: int = 10
    progress: bool = True  # trainer.progress: a bar in a terminal, a line per epoch elsewhere

    def hyperparameters(self) -> dict:
        return {
            "epochs": self.epochs, "batch_size": self.batch_size, "arch": self.arch,
            "optimizer": "adam", "learning_rate": self.learning_rate,
            "early_stopping": {"monitor": "val_loss", "patience": self.patience, "restore_best_weights": True},
            "validation_share": VALIDATION_SHARE, "split": "stratified by product, seeded",
        }


@dataclass
class TrainingResult:
    version: int
    folder: Path
    metrics: dict
    model: keras.Model = field(repr=False)
    validation_features: np.ndarray = field(repr=False)


def fit(dataset: Dataset, config: TrainingConfig) -> tuple[keras.Model, dict, np.ndarray, np.ndarray, float]:
    """Train the network; returns (model, history, train rows, validation rows, seconds)."""
    keras.utils.set_random_seed(config.seed)
    train_idx, val_idx = scoring.stratified_split(dataset.labels, VALIDATION_SHARE, config.seed)
    x, y = dataset.features, dataset.labels
    model = build_model(config.arch, len(dataset.catalog), config.learning_rate)
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=config.patience, restore_best_weights=True
    )
    callbacks = [stopper, EpochProgress(config.epochs)] if config.progress else [stopper]
    started = time.perf_counter()
    history = model.fit(
        x[train_idx], y[train_idx],
        validation_data=(x[val_idx], y[val_idx]),
        epochs=config.epochs, batch_size=config.batch_size, shuffle=True,
        callbacks=callbacks, verbose=0,
    )
    seconds = time.perf_counter() - started
    return model, {k: [float(v) for v in vals] for k, vals in history.history.items()}, train_idx, val_idx, seconds


def _predict(model: keras.Model, features: np.ndarray) -> np.ndarray:
    return model.predict(features, batch_size=8192, verbose=0)


def train_and_publish(dataset: Dataset, models_dir: str | Path, config: TrainingConfig) -> TrainingResult:
    model, history, train_idx, val_idx, seconds = fit(dataset, config)
    epochs_run = len(history["loss"])
    best_epoch = int(np.argmin(history["val_loss"])) + 1
    x, y = dataset.features, dataset.labels
    train_scores = scoring.scores(x[train_idx], y[train_idx], _predict(model, x[train_idx]), dataset.catalog,
                                  dataset.generated)
    val_scores = scoring.scores(x[val_idx], y[val_idx], _predict(model, x[val_idx]), dataset.catalog,
                                dataset.generated)
    confusion = np.array(val_scores["confusion"])
    report = {
        "architecture": config.arch,
        "epochs_run": epochs_run,
        "stopped_epoch": epochs_run,
        "best_epoch": best_epoch,
        "early_stopped": epochs_run < config.epochs,
        "training_seconds": round(seconds, 3),
        "train_rows": int(len(train_idx)),
        "validation_rows": int(len(val_idx)),
        "train": {k: v for k, v in train_scores.items() if k not in ("per_product", "confusion")},
        "validation": val_scores,
        "history": history,
        "bayes_note": None if dataset.generated else
        "data is not unchanged output of `trainer generate`, so the true purchase "
        "probabilities (and the Bayes-optimal accuracy) are unknown",
    }

    staged = model_repository.staging_dir(models_dir)
    try:
        export_saved_model(model, staged)
        (staged / model_repository.METRICS_FILE).write_text(json.dumps(report, indent=2) + "\n")
        plots.plot_history(history, best_epoch, staged / "history.png",
                           bayes_accuracy=val_scores["bayes_optimal_accuracy"])
        plots.plot_confusion(confusion, dataset.catalog, staged / "confusion.png")
        metadata = model_repository.ModelMetadata(
            catalog=dataset.catalog,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            tensorflow_version=tf.__version__,
            seed=config.seed,
            architecture=config.arch,
            hyperparameters=config.hyperparameters(),
            training_data=dataset.fingerprint(),
        )
        # metadata.json last: publish() refuses a folder without it.
        model_repository.write_metadata(staged, metadata)
        version = model_repository.publish(staged, models_dir)
    except BaseException:
        model_repository.discard(staged)
        raise
    folder = model_repository.version_dir(models_dir, version)
    log.info("published version=%d folder=%s val_accuracy=%.4f bayes=%s epochs_run=%d seconds=%.1f",
             version, folder, val_scores["accuracy"], val_scores["bayes_optimal_accuracy"], epochs_run, seconds)
    return TrainingResult(version, folder, report, model, x[val_idx])
