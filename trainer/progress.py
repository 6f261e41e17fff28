"""Training progress as a person wants to read it.

In a terminal: ONE tqdm bar over the epochs with the current loss and accuracy (train and
validation) as its postfix, so `make run` shows a moving line instead of 100 log lines.
Not a terminal (CI, a log file): one plain line per epoch, which survives in logs where a
redrawn bar would turn into control characters. `--quiet` uses neither.
"""

from __future__ import annotations

import sys
from typing import TextIO

import keras
from tqdm import tqdm

METRIC_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


def describe(logs: dict | None) -> str:
    """'loss 1.2345 accuracy 0.5123 val_loss …' from a Keras logs dict, in a fixed order."""
    logs = logs or {}
    return " ".join(f"{key} {float(logs[key]):.4f}" for key in METRIC_KEYS if key in logs)


class EpochProgress(keras.callbacks.Callback):
    def __init__(self, epochs: int, stream: TextIO | None = None, bar: bool | None = None):
        super().__init__()
        self.epochs = epochs
        self.stream = stream if stream is not None else sys.stdout
        self.bar_mode = self.stream.isatty() if bar is None else bar
        self._bar: tqdm | None = None

    def on_train_begin(self, logs=None):
        if self.bar_mode:
            self._bar = tqdm(total=self.epochs, desc="training", unit="epoch", file=self.stream,
                             dynamic_ncols=True, leave=True)

    def on_epoch_end(self, epoch, logs=None):
        if self._bar is not None:
            logs = logs or {}
            self._bar.set_postfix({key: f"{float(logs[key]):.4f}" for key in METRIC_KEYS if key in logs},
                                  refresh=False)
            self._bar.update(1)
        else:
            print(f"epoch {epoch + 1}/{self.epochs} {describe(logs)}", file=self.stream, flush=True)

    def on_train_end(self, logs=None):
        if self._bar is not None:
            # Early stopping ends before `epochs`: close the bar where it stopped.
            self._bar.close()
            self._bar = None
