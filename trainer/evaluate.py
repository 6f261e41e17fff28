"""Score a published model version on a purchases file, through its served signature."""

from __future__ import annotations

from pathlib import Path

from recommender import model_repository
from trainer import metrics as scoring
from trainer.data import load_purchases
from trainer.model import load_serving_function


def evaluate(models_dir: str | Path, version: int | None, data_path: str | Path) -> dict:
    """Load version `version` (latest when None) exactly as a server would and score it.

    Raises ValueError (DataError for the data) with a message when something is missing."""
    if version is None:
        version = model_repository.latest_version(models_dir)
        if version is None:
            raise ValueError(f"{models_dir}: no published model versions")
    folder = model_repository.version_dir(models_dir, version)
    if not folder.is_dir():
        available = model_repository.list_versions(models_dir)
        raise ValueError(f"{folder}: no such version (published: {available or 'none'})")
    metadata = model_repository.read_metadata(folder)
    dataset = load_purchases(data_path, catalog=metadata.catalog, min_rows=1, every_product=False)
    predict = load_serving_function(folder)
    probabilities = predict(dataset.features)
    result = scoring.scores(dataset.features, dataset.labels, probabilities, metadata.catalog, dataset.generated)
    result.pop("confusion")
    return {"version": version, "folder": str(folder), "data": dataset.fingerprint(), **result}
