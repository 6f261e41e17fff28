"""The model repository layout shared by the trainer (writes) and the inference server (reads).

TensorFlow Serving layout: one folder per model, one numeric sub-folder per version.

    <models_dir>/recommender/1/saved_model.pb, variables/   the SavedModel (serving_default:
                                                           float32[None, 6] -> float32[None, N])
    <models_dir>/recommender/1/metadata.json               catalog, schema version, provenance
    <models_dir>/recommender/1/metrics.json, history.png   training report (not needed to serve)

A version is published by building it in a hidden staging folder next to the versions and
renaming it into place, so a server polling the folder never sees half a model. No
TensorFlow here: the gateway and clients may import this module.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recommender.schema import SCHEMA_VERSION, Catalog

MODEL_NAME = "recommender"
METADATA_FILE = "metadata.json"
METRICS_FILE = "metrics.json"
STAGING_PREFIX = ".staging-"


def model_root(models_dir: str | os.PathLike) -> Path:
    return Path(models_dir) / MODEL_NAME


def version_dir(models_dir: str | os.PathLike, version: int) -> Path:
    return model_root(models_dir) / str(version)


def list_versions(models_dir: str | os.PathLike) -> list[int]:
    """Published versions, ascending. Staging folders and stray files are ignored."""
    root = model_root(models_dir)
    if not root.is_dir():
        return []
    versions = []
    for entry in root.iterdir():
        if entry.is_dir() and entry.name.isdigit() and int(entry.name) > 0:
            versions.append(int(entry.name))
    return sorted(versions)


def latest_version(models_dir: str | os.PathLike) -> int | None:
    versions = list_versions(models_dir)
    return versions[-1] if versions else None


def staging_dir(models_dir: str | os.PathLike) -> Path:
    """A fresh hidden folder on the same filesystem as the versions (so rename is atomic)."""
    root = model_root(models_dir)
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=root))


def publish(staged: str | os.PathLike, models_dir: str | os.PathLike) -> int:
    """Atomically move a fully written staging folder into place as the next version."""
    staged = Path(staged)
    if not (staged / METADATA_FILE).is_file():
        raise ValueError(f"{staged} has no {METADATA_FILE}; refusing to publish an incomplete model")
    while True:
        version = (latest_version(models_dir) or 0) + 1
        target = version_dir(models_dir, version)
        try:
            # os.rename onto an existing non-empty dir fails, so two trainers racing
            # for the same number cannot overwrite each other: the loser retries.
            os.rename(staged, target)
            return version
        except OSError:
            if target.exists():
                continue
            raise


def discard(staged: str | os.PathLike) -> None:
    shutil.rmtree(staged, ignore_errors=True)


@dataclass
class ModelMetadata:
    """What travels with a version besides the weights."""

    catalog: Catalog
    schema_version: str = SCHEMA_VERSION
    input_size: int = 6
    created_at: str = ""
    tensorflow_version: str = ""
    seed: int | None = None
    architecture: str = "seed"
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    training_data: dict[str, Any] = field(default_factory=dict)  # rows, sha256, path name

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "input_size": self.input_size,
            "catalog": self.catalog.to_json(),
            "created_at": self.created_at,
            "tensorflow_version": self.tensorflow_version,
            "seed": self.seed,
            "architecture": self.architecture,
            "hyperparameters": self.hyperparameters,
            "training_data": self.training_data,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelMetadata:
        if "catalog" not in data:
            raise ValueError("metadata has no catalog")
        return cls(
            catalog=Catalog.from_json(data["catalog"]),
            schema_version=str(data.get("schema_version", "")),
            input_size=int(data.get("input_size", 6)),
            created_at=str(data.get("created_at", "")),
            tensorflow_version=str(data.get("tensorflow_version", "")),
            seed=data.get("seed"),
            architecture=str(data.get("architecture", "seed")),
            hyperparameters=dict(data.get("hyperparameters", {})),
            training_data=dict(data.get("training_data", {})),
        )


def write_metadata(folder: str | os.PathLike, metadata: ModelMetadata) -> None:
    path = Path(folder) / METADATA_FILE
    path.write_text(json.dumps(metadata.to_json(), ensure_ascii=False, indent=2) + "\n")


def read_metadata(folder: str | os.PathLike) -> ModelMetadata:
    """Read and check a version's metadata; ValueError says what is wrong."""
    path = Path(folder) / METADATA_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ValueError(f"{path} is missing") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    metadata = ModelMetadata.from_json(data)
    if metadata.schema_version != SCHEMA_VERSION:
        raise ValueError(
            f"{path}: schema version {metadata.schema_version!r} is not the served "
            f"schema {SCHEMA_VERSION!r}"
        )
    return metadata
