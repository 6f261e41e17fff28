"""Figures of a training run: history.png (loss and accuracy per epoch, train vs validation)
and confusion.png (validation confusion matrix). Non-interactive matplotlib backend."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from recommender.schema import Catalog  # noqa: E402


def plot_history(history: dict[str, list[float]], best_epoch: int, path: Path,
                 bayes_accuracy: float | None = None) -> None:
    fig = history_figure(history, best_epoch, bayes_accuracy)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def history_figure(history: dict[str, list[float]], best_epoch: int,
                   bayes_accuracy: float | None = None) -> plt.Figure:
    """Loss and accuracy per epoch; the early-stopping (best) epoch is marked on both panels and
    the Bayes-optimal accuracy, the best any model could reach on these validation rows, is the
    yardstick line on the accuracy panel (absent when the data's true probabilities are unknown)."""
    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, title in ((ax_loss, "loss", "Loss"), (ax_acc, "accuracy", "Accuracy")):
        ax.plot(epochs, history[key], label="train")
        ax.plot(epochs, history[f"val_{key}"], label="validation")
        ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1, label=f"best epoch {best_epoch}")
        if key == "accuracy" and bayes_accuracy is not None:
            ax.axhline(bayes_accuracy, color="tab:red", linestyle=":", linewidth=1.5,
                       label=f"Bayes-optimal {bayes_accuracy:.3f}")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle("Training history")
    fig.tight_layout()
    return fig


def plot_confusion(confusion: np.ndarray, catalog: Catalog, path: Path) -> None:
    labels = list(catalog.product_ids)
    # Normalise per true product so rare and common products read on the same scale.
    totals = confusion.sum(axis=1, keepdims=True)
    share = np.divide(confusion, totals, out=np.zeros(confusion.shape, dtype=float), where=totals > 0)
    fig, ax = plt.subplots(figsize=(8, 7))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("bought")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if share[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, label="share of row")
    ax.set_title("Validation confusion matrix")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
