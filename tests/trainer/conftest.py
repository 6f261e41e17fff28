"""Fixtures of the trainer tests: small generated data files and a CLI runner."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import PYTHON, ROOT
from trainer.generate import generate, write_dataset

SMALL_ROWS = 3000


def run_trainer(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """`python -m trainer ...` as a user would run it."""
    return subprocess.run([PYTHON, "-m", "trainer", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="session")
def small_frame():
    return generate(SMALL_ROWS, seed=11)


@pytest.fixture
def small_csv(tmp_path, small_frame) -> Path:
    return write_dataset(small_frame, tmp_path / "purchases.csv", seed=11)
