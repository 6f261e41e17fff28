"""Training output (issue 16): a progress bar in a terminal, a line per epoch elsewhere, one
summary line at the end; and the history plot's yardsticks (Bayes-optimal line, best epoch)."""

from __future__ import annotations

import io

import pytest

from tests.trainer.conftest import run_trainer
from trainer.plots import history_figure
from trainer.progress import EpochProgress, describe

LOGS = {"loss": 1.5, "accuracy": 0.5, "val_loss": 1.4, "val_accuracy": 0.55}


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_describe_is_fixed_order_and_skips_missing():
    assert describe(LOGS) == "loss 1.5000 accuracy 0.5000 val_loss 1.4000 val_accuracy 0.5500"
    assert describe({"val_loss": 2, "loss": 1}) == "loss 1.0000 val_loss 2.0000"
    assert describe(None) == ""


def test_not_a_terminal_prints_one_line_per_epoch():
    out = io.StringIO()
    progress = EpochProgress(3, stream=out)
    progress.on_train_begin()
    for epoch in range(3):
        progress.on_epoch_end(epoch, LOGS)
    progress.on_train_end()
    lines = out.getvalue().splitlines()
    assert lines == [f"epoch {i}/3 {describe(LOGS)}" for i in (1, 2, 3)]


def test_terminal_gets_one_bar_with_loss_and_accuracy():
    out = FakeTerminal()
    progress = EpochProgress(100, stream=out)
    progress.on_train_begin()
    for epoch in range(7):  # early stopping after 7 of 100 epochs
        progress.on_epoch_end(epoch, LOGS)
    progress.on_train_end()
    text = out.getvalue()
    assert "epoch 1/" not in text  # no per-epoch lines
    assert "training" in text and "7/100" in text
    assert "val_accuracy=0.5500" in text and "loss=1.5000" in text
    assert text.count("\n") <= 1  # one bar, redrawn in place with \r


def test_history_plot_draws_bayes_yardstick_and_best_epoch():
    history = {"loss": [2.0, 1.5, 1.4], "val_loss": [2.1, 1.6, 1.5],
               "accuracy": [0.3, 0.5, 0.55], "val_accuracy": [0.3, 0.52, 0.56]}
    fig = history_figure(history, best_epoch=3, bayes_accuracy=0.6179)
    loss_ax, acc_ax = fig.axes
    acc_labels = [line.get_label() for line in acc_ax.get_lines()]
    assert "Bayes-optimal 0.618" in acc_labels and "best epoch 3" in acc_labels
    bayes = next(line for line in acc_ax.get_lines() if line.get_label().startswith("Bayes"))
    assert list(bayes.get_ydata()) == [0.6179, 0.6179]
    assert not any(line.get_label().startswith("Bayes") for line in loss_ax.get_lines())
    assert "best epoch 3" in [line.get_label() for line in loss_ax.get_lines()]
    no_yardstick = history_figure(history, best_epoch=3, bayes_accuracy=None)
    assert not any(line.get_label().startswith("Bayes") for line in no_yardstick.axes[1].get_lines())


@pytest.mark.slow
def test_cli_prints_epoch_lines_then_the_summary_and_quiet_prints_only_the_summary(small_csv, tmp_path,
                                                                                   capsys, monkeypatch):
    shown = run_trainer("train", "--data", small_csv, "--models-dir", tmp_path / "m1", "--epochs", "3")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert [line.split()[1] for line in lines if line.startswith("epoch ")] == ["1/3", "2/3", "3/3"]
    assert lines[-1].startswith("validation accuracy ") and "Bayes-optimal" in lines[-1]
    # --quiet through the same CLI entry point, in this process (TensorFlow is loaded already:
    # a second `python -m trainer` cost ~8 s of start-up); stdout is no terminal here either
    from trainer.cli import main

    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")  # main() sets it; keep it from leaking
    capsys.readouterr()
    assert main(["train", "--data", str(small_csv), "--models-dir", str(tmp_path / "m2"), "--epochs", "3",
                 "--quiet"]) == 0
    quiet = capsys.readouterr().out
    assert not any(line.startswith("epoch ") for line in quiet.splitlines())
    assert quiet.splitlines()[-1].startswith("validation accuracy ")
