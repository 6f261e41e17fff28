"""`python -m trainer generate` and argument checks (no TensorFlow needed)."""

from __future__ import annotations

import json

import pandas as pd

from recommender.schema import SLOT_NAMES
from tests.trainer.conftest import run_trainer
from trainer import rules
from trainer.generate import sha256_of, sidecar_path


def test_generate_is_deterministic_for_a_seed(tmp_path):
    outputs = []
    for name, seed in (("a.csv", 9), ("b.csv", 9), ("c.csv", 10)):
        result = run_trainer("generate", "--rows", 1500, "--seed", seed, "--out", tmp_path / name)
        assert result.returncode == 0, result.stderr
        assert f"wrote 1500 rows to {tmp_path / name}" in result.stdout
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0] != outputs[2]
    frame = pd.read_csv(tmp_path / "a.csv")
    assert list(frame.columns) == [*SLOT_NAMES, "product_id"] and len(frame) == 1500
    sidecar = json.loads(sidecar_path(tmp_path / "a.csv").read_text())
    assert sidecar["sha256"] == sha256_of(tmp_path / "a.csv")
    assert sidecar["seed"] == 9 and sidecar["rules_version"] == rules.RULES_VERSION


def test_generate_writes_parquet_by_extension(tmp_path):
    out = tmp_path / "p.parquet"
    assert run_trainer("generate", "--rows", 1200, "--seed", 9, "--out", out).returncode == 0
    assert out.read_bytes()[:4] == b"PAR1"
    assert len(pd.read_parquet(out)) == 1200


def test_bad_arguments_are_one_line_errors(tmp_path):
    result = run_trainer("generate", "--rows", 0, "--out", tmp_path / "x.csv")
    assert result.returncode == 2 and "error: --rows must be positive, got 0" in result.stderr
    result = run_trainer("train", "--data", tmp_path / "x.csv", "--models-dir", tmp_path / "m", "--epochs", 0)
    assert result.returncode == 2 and "error: --epochs must be at least 1, got 0" in result.stderr
    result = run_trainer("train", "--data", tmp_path / "x.csv", "--models-dir", tmp_path / "m", "--arch", "big")
    assert result.returncode == 2 and "invalid choice: 'big'" in result.stderr
    assert not (tmp_path / "m").exists()
