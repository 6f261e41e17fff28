"""Training publishes complete, loadable versions whose served outputs equal the trained
model's, with the metadata, metrics and figures a version carries."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from recommender import model_repository
from recommender.schema import DEFAULT_CATALOG, SCHEMA_VERSION
from tests.trainer.conftest import run_trainer
from trainer.data import load_purchases
from trainer.generate import DEFAULT_ROWS
from trainer.metrics import stratified_split
from trainer.training import TrainingConfig, train_and_publish

pytestmark = pytest.mark.slow

# Raw vectors as a server receives them, including "not stated" zeros and extreme values.
PROBE = np.array([
    [30, 1, 300_000, 1, 2, 1],
    [0, 0, 0, 0, 0, 0],
    [65, 2, 500_000, 0, 2, 4],
    [17, 2, 2_000_000, 5, 1, 4],
    [100, 1, 1_000_000_000, 10, 2, 3],
    [1, 0, 1, 3, 0, 0],
], dtype=np.float32)


def test_stratified_split_is_exact_seeded_and_keeps_product_shares():
    labels = np.random.default_rng(0).choice(10, size=70_000, p=np.linspace(1, 3, 10) / 20)
    train, val = stratified_split(labels, 0.1, seed=42)
    assert (len(train), len(val)) == (63_000, 7_000)
    assert len(np.intersect1d(train, val)) == 0
    np.testing.assert_allclose(np.bincount(labels[val]) / 7_000, np.bincount(labels) / 70_000, atol=0.0005)
    again_train, again_val = stratified_split(labels, 0.1, seed=42)
    np.testing.assert_array_equal(val, again_val)
    assert not np.array_equal(val, stratified_split(labels, 0.1, seed=43)[1])


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory):
    """Train twice with the same seed into one repository: versions 1 and 2."""
    from trainer.generate import generate, write_dataset

    folder = tmp_path_factory.mktemp("twice")
    data = load_purchases(write_dataset(generate(4000, seed=3), folder / "purchases.csv", seed=3))
    config = TrainingConfig(epochs=8, seed=5, progress=False)
    results = [train_and_publish(data, folder / "models", config) for _ in range(2)]
    return folder / "models", data, results


def test_training_twice_publishes_versions_1_and_2(two_versions):
    models, _, results = two_versions
    assert [r.version for r in results] == [1, 2]
    assert model_repository.list_versions(models) == [1, 2]
    # Nothing half-written is left next to the versions.
    assert [p.name for p in model_repository.model_root(models).iterdir()] in (["1", "2"], ["2", "1"])


def test_served_signature_has_the_contract_names_and_the_trained_outputs(two_versions):
    models, _, results = two_versions
    for result in results:
        loaded = tf.saved_model.load(str(model_repository.version_dir(models, result.version)))
        signature = loaded.signatures["serving_default"]
        inputs = signature.structured_input_signature[1]
        assert list(inputs) == ["features"]
        assert inputs["features"].shape.as_list() == [None, 6] and inputs["features"].dtype == tf.float32
        served = signature(features=tf.constant(PROBE))
        assert list(served) == ["probabilities"]
        probabilities = served["probabilities"].numpy()
        assert probabilities.shape == (len(PROBE), 10)
        np.testing.assert_allclose(probabilities, result.model.predict(PROBE, verbose=0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
        batch = result.validation_features[:500]
        np.testing.assert_allclose(signature(features=tf.constant(batch))["probabilities"].numpy(),
                                   result.model.predict(batch, verbose=0), rtol=1e-5, atol=1e-6)


def test_same_seed_and_data_train_the_same_model(two_versions):
    _, _, (first, second) = two_versions
    np.testing.assert_allclose(first.model.predict(PROBE, verbose=0), second.model.predict(PROBE, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_version_carries_metadata_metrics_and_figures(two_versions):
    models, data, results = two_versions
    folder = model_repository.version_dir(models, results[0].version)
    metadata = model_repository.read_metadata(folder)
    assert metadata.catalog == DEFAULT_CATALOG
    assert metadata.schema_version == SCHEMA_VERSION
    assert metadata.training_data["sha256"] == data.sha256 and metadata.training_data["rows"] == 4000
    assert metadata.seed == 5 and metadata.architecture == "onehot"
    assert metadata.hyperparameters["batch_size"] == 5000
    assert metadata.tensorflow_version == tf.__version__ and metadata.created_at

    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["train_rows"] == 3600 and metrics["validation_rows"] == 400
    assert 1 <= metrics["best_epoch"] <= metrics["stopped_epoch"] == len(metrics["history"]["val_loss"]) <= 8
    validation = metrics["validation"]
    assert set(validation["per_product"]) == set(DEFAULT_CATALOG.product_ids)
    assert 0 < validation["accuracy"] <= validation["top3_accuracy"] <= 1
    # Generated data: the Bayes yardstick is computed on the same validation rows.
    assert 0 < validation["bayes_optimal_accuracy"] < 1
    assert validation["model_to_bayes_ratio"] == pytest.approx(
        validation["accuracy"] / validation["bayes_optimal_accuracy"])
    for figure in ("history.png", "confusion.png"):
        assert (folder / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_conftest_model_and_evaluate_command(trained_models_dir, purchases_csv, capsys, monkeypatch):
    """The suite-wide model (trained by the CLI) is version 1 and `evaluate` scores it."""
    assert model_repository.list_versions(trained_models_dir) == [1]
    result = run_trainer("evaluate", "--models-dir", trained_models_dir, "--version", 1, "--data", purchases_csv)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["version"] == 1 and report["rows"] == 20_000
    assert report["bayes_optimal_accuracy"] is not None
    assert report["model_to_bayes_ratio"] > 0.9

    # A missing version through the same CLI entry point, in this process (TensorFlow is loaded
    # already: a second `python -m trainer` cost ~6 s of start-up to print one line).
    from trainer.cli import main

    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")  # main() sets it; keep it from leaking
    capsys.readouterr()
    assert main(["evaluate", "--models-dir", str(trained_models_dir), "--version", "7",
                 "--data", str(purchases_csv)]) == 2
    assert "no such version (published: [1])" in capsys.readouterr().err


def test_make_train_path_meets_the_accuracy_bar(fresh_clone_run):
    """`make train` on a fresh clone: generate the default data, train the default network.
    The done-when numbers of the trainer issue, on the validation rows. The training is the one
    `make run` did on a fresh clone (`fresh_clone_run` in tests/conftest.py): the stack runs
    exactly `make train`'s command, `python -m trainer train --data D --models-dir M
    --generate-if-missing`, so the suite trains the default network once for both tests."""
    result = fresh_clone_run.result
    assert result.returncode == 0, result.stderr
    assert f"generated {DEFAULT_ROWS} rows" in result.stdout
    assert "published version 1 at" in result.stdout
    metrics = json.loads((model_repository.version_dir(fresh_clone_run.models, 1) / "metrics.json").read_text())
    validation = metrics["validation"]
    assert metrics["validation_rows"] == 7_000
    assert validation["model_to_bayes_ratio"] >= 0.98, validation
    assert validation["primary_product_top1"]["rows"] > 1000
    assert validation["primary_product_top1"]["rate"] >= 0.9


def test_make_run_trains_with_the_make_train_command(tmp_path, monkeypatch):
    """What lets the test above read `make run`'s training as the `make train` path: with no
    model, the stack runs the Makefile's `train` recipe, argument for argument."""
    from types import SimpleNamespace

    from clients import stack
    from tests.support import ROOT

    [recipe] = [line.split() for line in (ROOT / "Makefile").read_text().splitlines()
                if line.startswith("\t") and "-m trainer train" in line]
    config = SimpleNamespace(models_dir=tmp_path / "models", data=tmp_path / "data.csv")
    expected = [{"$(DATA)": str(config.data), "$(MODELS_DIR)": str(config.models_dir)}.get(a, a) for a in recipe[1:]]
    commands = []
    monkeypatch.setattr(stack.subprocess, "run", lambda args, **kwargs: commands.append(args))
    stack.ensure_model(config)
    assert [command[1:] for command in commands] == [expected]
