"""The development data's hidden buying rules, and the exact purchase probabilities they imply.

The rules are written on the OBSERVED customer vector, i.e. after some slots have been
blanked to 0 ("not stated"). A buyer's product is then drawn from

    P(product | observed vector) = softmax(sum of the logit shifts of every rule that applies)

so `probabilities(x)` is the true conditional distribution for ANY vector, including rows read
back from a file, and its argmax is the Bayes-optimal prediction: the best accuracy any model
could reach on those rows. A slot that is 0 triggers no rule about that slot.

Rules (logit shifts; positive = more likely). One table, `RULES`, below; the budget rule is
the only one that depends on the product's price, so it is a function (`budget_shift`):

    when                         shifts
    everyone (popularity)        earbuds +0.5, airfryer +0.4, smartwatch +0.3, massager +0.2,
                                 camera -0.3, laptop -0.2
    interest = <code>            its primary product +3.5, one related product +0.8
    age 1-12                     console +1.0, tablet +0.8, laptop -0.3
    age 13-24 (students)         laptop +0.8, tablet +0.8, console +0.4
    age 25-39                    earbuds +0.3, smartwatch +0.3, camera +0.3
    age 40-54                    airfryer +0.6, massager +0.3, smartwatch +0.2
    age 55+                      massager +0.5, ereader +0.4, console -0.6, laptop -0.3
    age 55+ and a gift           massager +0.5, ereader +0.6 (on top of age 55+)
    female                       hairdryer +1.0, airfryer +0.2
    male                         console +0.6, camera +0.3, laptop +0.2, hairdryer -0.4
    a gift                       earbuds +0.3, smartwatch +0.3, massager +0.3, laptop -0.3
    own use                      laptop +0.3, airfryer +0.3
    spring                       camera +0.8, smartwatch +0.3
    summer                       earbuds +0.4, hairdryer +0.3, camera +0.2
    autumn                       camera +0.8, ereader +0.4
    winter                       console +0.9, massager +0.5, ereader +0.2
    budget < product's price     that product -3.5 x min(1, log2(price / budget)):
                                 a little less likely just under the price, -3.5 at half of it

The interest bonus (+3.5) is larger than any combination of the other rules for products the
customer can afford, so with a known interest and a budget at or above the primary product's
price that product is the most likely purchase (tests/trainer/test_rules.py checks every
combination). Buying stays noisy: that product is bought with 60-95 % probability (79 %
typically, up to 99 % when the budget rules out everything else), so the Bayes-optimal
accuracy is well below 100 % (about 62 % on the default data, where a fifth of the rows do
not state an interest).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from recommender.schema import AGE, BUDGET, DEFAULT_CATALOG, GENDER, INTEREST, PURPOSE, SEASON, Catalog

# Bump when any rule or number below changes: data files record the version they were made
# with, and the trainer only recomputes Bayes-optimal predictions for a matching version.
RULES_VERSION = "1"

# How many logits the budget rule takes off a product the customer cannot afford.
BUDGET_PENALTY = 3.5
INTEREST_PRIMARY_BONUS = 3.5
INTEREST_RELATED_BONUS = 0.8


@dataclass(frozen=True)
class Rule:
    """When `applies` is true of an observed vector, add `shifts` to the products' logits."""

    when: str
    applies: Callable[[np.ndarray], np.ndarray]  # (N, 6) observed matrix -> (N,) bool
    shifts: Mapping[str, float]  # product_id -> logit shift


def _always(x: np.ndarray) -> np.ndarray:
    return np.ones(len(x), dtype=bool)


def _slot_is(slot: int, value: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: x[:, slot] == value


def _age_between(low: int, high: int) -> Callable[[np.ndarray], np.ndarray]:
    # Age 0 is "not stated", so every range starts at 1 or later.
    return lambda x: (x[:, AGE] >= low) & (x[:, AGE] <= high)


# The related product per interest: what the same customers buy second most often.
_INTEREST_SHIFTS: dict[int, dict[str, float]] = {
    1: {"earbuds": INTEREST_PRIMARY_BONUS, "tablet": INTEREST_RELATED_BONUS},  # music
    2: {"smartwatch": INTEREST_PRIMARY_BONUS, "earbuds": INTEREST_RELATED_BONUS},  # fitness
    3: {"laptop": INTEREST_PRIMARY_BONUS, "tablet": INTEREST_RELATED_BONUS},  # work & study
    4: {"tablet": INTEREST_PRIMARY_BONUS, "laptop": INTEREST_RELATED_BONUS},  # video & drawing
    5: {"console": INTEREST_PRIMARY_BONUS, "earbuds": INTEREST_RELATED_BONUS},  # gaming
    6: {"camera": INTEREST_PRIMARY_BONUS, "smartwatch": INTEREST_RELATED_BONUS},  # photo & travel
    7: {"ereader": INTEREST_PRIMARY_BONUS, "tablet": INTEREST_RELATED_BONUS},  # reading
    8: {"airfryer": INTEREST_PRIMARY_BONUS, "massager": INTEREST_RELATED_BONUS},  # cooking & home
    9: {"hairdryer": INTEREST_PRIMARY_BONUS, "massager": INTEREST_RELATED_BONUS},  # beauty
    10: {"massager": INTEREST_PRIMARY_BONUS, "smartwatch": INTEREST_RELATED_BONUS},  # health
}

RULES: tuple[Rule, ...] = (
    Rule("everyone (popularity)", _always,
         {"earbuds": 0.5, "airfryer": 0.4, "smartwatch": 0.3, "massager": 0.2, "camera": -0.3, "laptop": -0.2}),
    *(Rule(f"interest = {code}", _slot_is(INTEREST, code), shifts) for code, shifts in _INTEREST_SHIFTS.items()),
    Rule("age 1-12", _age_between(1, 12), {"console": 1.0, "tablet": 0.8, "laptop": -0.3}),
    Rule("age 13-24 (students)", _age_between(13, 24), {"laptop": 0.8, "tablet": 0.8, "console": 0.4}),
    Rule("age 25-39", _age_between(25, 39), {"earbuds": 0.3, "smartwatch": 0.3, "camera": 0.3}),
    Rule("age 40-54", _age_between(40, 54), {"airfryer": 0.6, "massager": 0.3, "smartwatch": 0.2}),
    Rule("age 55+", _age_between(55, 100), {"massager": 0.5, "ereader": 0.4, "console": -0.6, "laptop": -0.3}),
    Rule("age 55+ and a gift", lambda x: (x[:, AGE] >= 55) & (x[:, PURPOSE] == 2),
         {"massager": 0.5, "ereader": 0.6}),
    Rule("female", _slot_is(GENDER, 1), {"hairdryer": 1.0, "airfryer": 0.2}),
    Rule("male", _slot_is(GENDER, 2), {"console": 0.6, "camera": 0.3, "laptop": 0.2, "hairdryer": -0.4}),
    Rule("a gift", _slot_is(PURPOSE, 2), {"earbuds": 0.3, "smartwatch": 0.3, "massager": 0.3, "laptop": -0.3}),
    Rule("own use", _slot_is(PURPOSE, 1), {"laptop": 0.3, "airfryer": 0.3}),
    Rule("spring", _slot_is(SEASON, 1), {"camera": 0.8, "smartwatch": 0.3}),
    Rule("summer", _slot_is(SEASON, 2), {"earbuds": 0.4, "hairdryer": 0.3, "camera": 0.2}),
    Rule("autumn", _slot_is(SEASON, 3), {"camera": 0.8, "ereader": 0.4}),
    Rule("winter", _slot_is(SEASON, 4), {"console": 0.9, "massager": 0.5, "ereader": 0.2}),
)


def budget_shift(budget: np.ndarray, prices: np.ndarray) -> np.ndarray:
    """(N,) budgets x (K,) prices -> (N, K) logit shifts; 0 where the budget is not stated
    or covers the price."""
    budget = np.asarray(budget, dtype=np.float64)[:, None]
    stated = budget > 0
    with np.errstate(divide="ignore"):
        shortfall = np.log2(np.asarray(prices, dtype=np.float64)[None, :] / np.where(stated, budget, 1.0))
    return np.where(stated, -BUDGET_PENALTY * np.clip(shortfall, 0.0, 1.0), 0.0)


def logits(observed: np.ndarray, catalog: Catalog = DEFAULT_CATALOG) -> np.ndarray:
    """(N, 6) observed vectors -> (N, K) logits of the buying rules."""
    x = np.asarray(observed, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 6:
        raise ValueError(f"expected an (N, 6) matrix, got shape {x.shape}")
    out = np.zeros((len(x), len(catalog)), dtype=np.float64)
    for rule in RULES:
        mask = rule.applies(x)
        for product_id, shift in rule.shifts.items():
            out[mask, catalog.index_of(product_id)] += shift
    out += budget_shift(x[:, BUDGET], np.array([p.price_krw for p in catalog]))
    return out


def probabilities(observed: np.ndarray, catalog: Catalog = DEFAULT_CATALOG) -> np.ndarray:
    """The true P(product | observed vector), (N, K), rows sum to 1."""
    z = logits(observed, catalog)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def bayes_predictions(observed: np.ndarray, catalog: Catalog = DEFAULT_CATALOG) -> np.ndarray:
    """The Bayes-optimal class for each row: the most probable product under the true rules."""
    return probabilities(observed, catalog).argmax(axis=1)
