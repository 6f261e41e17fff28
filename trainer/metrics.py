"""Plain-numpy pieces of training and evaluation: the seeded stratified split and the scores
written to metrics.json. No TensorFlow, so they are unit-testable on their own."""

from __future__ import annotations

import numpy as np

from recommender.schema import BUDGET, INTEREST, Catalog
from trainer import rules


def stratified_split(labels: np.ndarray, validation_share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation row indices: each class split in the same proportion, and the
    validation set exactly round(share x N) rows (largest-remainder allocation per class)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    n_val = int(round(validation_share * len(labels)))
    quota = counts * validation_share
    take = np.floor(quota).astype(int)
    # Hand out the rows lost to flooring to the classes with the largest remainders.
    for i in np.argsort(-(quota - take), kind="stable")[: n_val - take.sum()]:
        take[i] += 1
    val = []
    for cls, k in zip(classes, take, strict=True):
        rows = np.flatnonzero(labels == cls)
        val.append(rng.permutation(rows)[:k])
    val_idx = np.sort(np.concatenate(val))
    mask = np.ones(len(labels), dtype=bool)
    mask[val_idx] = False
    train_idx = np.flatnonzero(mask)
    return rng.permutation(train_idx), val_idx


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """Rows = true product, columns = predicted product."""
    m = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(m, (labels, predicted), 1)
    return m


def per_product(confusion: np.ndarray, catalog: Catalog) -> dict[str, dict[str, float | int]]:
    out = {}
    for product in catalog:
        i = product.index
        tp = int(confusion[i, i])
        predicted = int(confusion[:, i].sum())
        actual = int(confusion[i, :].sum())
        out[product.product_id] = {
            "precision": tp / predicted if predicted else 0.0,
            "recall": tp / actual if actual else 0.0,
            "support": actual,
        }
    return out


def top_k_accuracy(labels: np.ndarray, probabilities: np.ndarray, k: int) -> float:
    top = np.argsort(-probabilities, axis=1)[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def log_loss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    p = np.clip(probabilities[np.arange(len(labels)), labels], 1e-7, 1.0)
    return float(-np.log(p).mean())


def affordable_interest_rows(features: np.ndarray, catalog: Catalog) -> tuple[np.ndarray, np.ndarray]:
    """Rows with a known interest whose primary product is in the catalog and whose stated
    budget is at least that product's price, and that primary product's class index."""
    primary = np.full(len(features), -1)
    price = np.full(len(features), np.inf)
    for product in catalog:
        hit = features[:, INTEREST] == product.primary_interest
        primary[hit] = product.index
        price[hit] = product.price_krw
    rows = np.flatnonzero((primary >= 0) & (features[:, BUDGET] > 0) & (features[:, BUDGET] >= price))
    return rows, primary[rows]


def primary_product_rate(features: np.ndarray, predicted: np.ndarray, catalog: Catalog) -> dict:
    """How often the top-1 prediction is the interest's primary product, on the rows where a
    shop would expect it (known interest, budget covers the price)."""
    rows, primary = affordable_interest_rows(features, catalog)
    rate = float((predicted[rows] == primary).mean()) if len(rows) else None
    return {"rows": int(len(rows)), "rate": rate}


def scores(features: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, catalog: Catalog,
           generated: bool) -> dict:
    """Accuracy, top-3, loss, per-product precision/recall, the primary-product rate and,
    for generated data, the Bayes-optimal accuracy on the same rows and model/Bayes ratio."""
    predicted = probabilities.argmax(axis=1)
    confusion = confusion_matrix(labels, predicted, len(catalog))
    accuracy = float((predicted == labels).mean())
    out = {
        "rows": int(len(labels)),
        "loss": log_loss(labels, probabilities),
        "accuracy": accuracy,
        "top3_accuracy": top_k_accuracy(labels, probabilities, 3),
        "per_product": per_product(confusion, catalog),
        "primary_product_top1": primary_product_rate(features, predicted, catalog),
        "bayes_optimal_accuracy": None,
        "bayes_expected_accuracy": None,
        "model_to_bayes_ratio": None,
        "bayes_primary_product_top1": None,
        "confusion": confusion.tolist(),
    }
    if generated:
        # The generator's rules give the true P(product | row): its argmax is the best any
        # model can do on these very rows.
        true_probs = rules.probabilities(features, catalog)
        bayes = true_probs.argmax(axis=1)
        bayes_accuracy = float((bayes == labels).mean())
        out["bayes_optimal_accuracy"] = bayes_accuracy
        out["bayes_expected_accuracy"] = float(true_probs.max(axis=1).mean())
        out["model_to_bayes_ratio"] = accuracy / bayes_accuracy if bayes_accuracy else None
        out["bayes_primary_product_top1"] = primary_product_rate(features, bayes, catalog)
    return out
