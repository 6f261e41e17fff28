"""Development purchase data: who the customers are, what they leave unsaid, what they buy.

Vectorized numpy, deterministic for a seed. A row is made in three steps:
1. a customer (age, gender, budget, interest, purpose, season) drawn from `_draw_customers`;
2. each slot blanked to 0 ("not stated") with its own probability (`NOT_STATED_SHARE`);
3. a product drawn from the buying rules applied to the OBSERVED vector
   (`trainer.rules.probabilities`), so those probabilities are exactly P(product | row).

Next to the data file a small `<file>.generator.json` records the seed, the rules version and
the file's sha256: the trainer uses it to recognise generated data and to report the
Bayes-optimal accuracy (the rules say what the best possible prediction is for every row).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from recommender.schema import DEFAULT_CATALOG, MAX_BUDGET_KRW, SLOT_NAMES
from trainer import rules

DEFAULT_ROWS = 70_000
DEFAULT_SEED = 42
LABEL_COLUMN = "product_id"
SIDECAR_SUFFIX = ".generator.json"

# Share of rows in which each slot is "not stated" (0), in slot order.
NOT_STATED_SHARE = {"age": 0.25, "gender": 0.20, "budget": 0.30, "interest": 0.20, "purpose": 0.30, "season": 0.40}

# Age groups of the shop's customers: (share, first age, last age).
_AGE_GROUPS = ((0.05, 3, 12), (0.25, 13, 24), (0.45, 25, 54), (0.25, 55, 85))


def _draw_customers(rng: np.random.Generator, rows: int) -> np.ndarray:
    """The full (latent) vectors, before anything is left unsaid."""
    shares = np.array([g[0] for g in _AGE_GROUPS])
    group = rng.choice(len(_AGE_GROUPS), size=rows, p=shares / shares.sum())
    low = np.array([g[1] for g in _AGE_GROUPS])[group]
    high = np.array([g[2] for g in _AGE_GROUPS])[group]
    age = low + np.floor(rng.random(rows) * (high - low + 1))
    gender = rng.integers(1, 3, size=rows)
    interest = rng.integers(1, 11, size=rows)
    # People plan a budget around what they are after: the interest's product price times a
    # spread, so a good share of budgets falls below it. Named in round 10,000 won.
    primary_price = np.array([DEFAULT_CATALOG.primary_for(i).price_krw for i in range(1, 11)])[interest - 1]
    budget = primary_price * np.exp(rng.normal(0.15, 0.7, size=rows))
    budget = np.clip(np.round(budget / 10_000) * 10_000, 10_000, MAX_BUDGET_KRW)
    purpose = np.where(rng.random(rows) < 0.4, 2, 1)
    season = rng.integers(1, 5, size=rows)
    return np.column_stack([age, gender, budget, interest, purpose, season]).astype(np.float64)


def generate(rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """A purchases table: the 6 slot columns (observed values) + product_id."""
    if rows < 1:
        raise ValueError(f"rows must be positive, got {rows}")
    rng = np.random.default_rng(seed)
    latent = _draw_customers(rng, rows)
    blank = rng.random(latent.shape) < np.array([NOT_STATED_SHARE[name] for name in SLOT_NAMES])
    observed = np.where(blank, 0.0, latent)
    probs = rules.probabilities(observed)
    # Inverse-CDF sampling, one uniform per row.
    u = rng.random(rows)[:, None]
    label = np.minimum((probs.cumsum(axis=1) < u).sum(axis=1), len(DEFAULT_CATALOG) - 1)
    frame = pd.DataFrame(observed.astype(np.int64), columns=list(SLOT_NAMES))
    frame[LABEL_COLUMN] = np.array(DEFAULT_CATALOG.product_ids)[label]
    return frame


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sidecar_path(data_path: str | os.PathLike) -> Path:
    return Path(str(data_path) + SIDECAR_SUFFIX)


def write_dataset(frame: pd.DataFrame, out: str | os.PathLike, seed: int) -> Path:
    """Write CSV (or Parquet when `out` ends in .parquet) plus the generator sidecar."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    if out.suffix == ".parquet":
        frame.to_parquet(tmp, index=False)
    else:
        frame.to_csv(tmp, index=False)
    os.replace(tmp, out)
    sidecar = {
        "generator": "trainer.generate",
        "rules_version": rules.RULES_VERSION,
        "seed": seed,
        "rows": len(frame),
        "sha256": sha256_of(out),
    }
    sidecar_path(out).write_text(json.dumps(sidecar, indent=2) + "\n")
    return out


def is_generated(data_path: str | os.PathLike, sha256: str) -> bool:
    """True when the file is unchanged output of this generator with the current rules."""
    try:
        info = json.loads(sidecar_path(data_path).read_text())
    except (OSError, ValueError):
        return False
    return info.get("sha256") == sha256 and info.get("rules_version") == rules.RULES_VERSION
