"""Shared fixtures. A small model is trained once per test session by the real trainer
program (so every test that needs a model uses one the suite made itself)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.support import PYTHON, ROOT

# Small but real: enough rows that the model learns the buying rules, few enough to train
# in seconds on 2 cores.
TEST_ROWS = 20_000


@pytest.fixture(scope="session")
def purchases_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "purchases.csv"
    subprocess.run(
        [PYTHON, "-m", "trainer", "generate", "--rows", str(TEST_ROWS), "--seed", "7", "--out", str(path)],
        cwd=ROOT, check=True,
    )
    return path


@pytest.fixture(scope="session")
def trained_models_dir(tmp_path_factory, purchases_csv):
    """A model repository holding version 1, trained by the trainer CLI. Read-only for tests:
    copy it (see `models_dir_copy`) before publishing more versions into it."""
    models = tmp_path_factory.mktemp("models")
    subprocess.run(
        [PYTHON, "-m", "trainer", "train", "--data", str(purchases_csv), "--models-dir", str(models),
         "--seed", "7", "--quiet"],
        cwd=ROOT, check=True,
    )
    return models


@pytest.fixture
def models_dir_copy(tmp_path, trained_models_dir):
    target = tmp_path / "models"
    shutil.copytree(trained_models_dir, target)
    return target
