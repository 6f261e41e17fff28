"""The model every benchmark section scores with: the one given, or one trained now."""

from __future__ import annotations

import subprocess
from pathlib import Path

from recommender import model_repository
from tests.support import PYTHON, ROOT


def ensure_model(models_dir: str | Path | None, work: Path) -> Path:
    """A model repository with at least one version: the given one, or one trained now into
    `work` with the trainer CLI (20,000 generated rows: seconds, and the same network)."""
    if models_dir and model_repository.latest_version(models_dir) is not None:
        return Path(models_dir)
    models, data = work / "models", work / "purchases.csv"
    print("bench: training a model with the trainer CLI ...", flush=True)
    subprocess.run([PYTHON, "-m", "trainer", "generate", "--rows", "20000", "--seed", "7", "--out", str(data)],
                   cwd=ROOT, check=True, capture_output=True)
    subprocess.run([PYTHON, "-m", "trainer", "train", "--data", str(data), "--models-dir", str(models),
                    "--seed", "7", "--quiet"], cwd=ROOT, check=True, capture_output=True)
    return models
