"""The generator's buying rules behave like the shop described in docs/contract.md, and the
generated data follows them."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from recommender.schema import DEFAULT_CATALOG, SLOT_NAMES, validate_matrix
from trainer import rules
from trainer.generate import NOT_STATED_SHARE, generate

C = DEFAULT_CATALOG


def p(vector) -> np.ndarray:
    return rules.probabilities(np.array([vector], dtype=float))[0]


def pid(name: str) -> int:
    return C.index_of(name)


def test_every_rule_names_catalog_products():
    for rule in rules.RULES:
        for product_id in rule.shifts:
            C.index_of(product_id)  # raises KeyError for a typo


def test_probabilities_are_distributions():
    x = generate(2000, seed=1)[list(SLOT_NAMES)].to_numpy(float)
    probs = rules.probabilities(x)
    assert probs.shape == (2000, len(C))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-9)
    assert (probs > 0).all()


# Every combination of the other slots, including "not stated".
OTHER_SLOTS = list(itertools.product([0, 8, 20, 30, 45, 70], [0, 1, 2], [0, 1, 2], [0, 1, 2, 3, 4]))


@pytest.mark.parametrize("product", list(C), ids=lambda product: product.product_id)
def test_primary_product_is_most_likely_when_affordable(product):
    for budget in (0, product.price_krw, product.price_krw * 3):
        for age, gender, purpose, season in OTHER_SLOTS:
            probs = p([age, gender, budget, product.primary_interest, purpose, season])
            assert probs.argmax() == product.index, (age, gender, budget, purpose, season, probs.round(3))


def test_buying_is_noisy_so_no_rule_is_certain():
    frame = generate(5000, seed=2)
    x = frame[list(SLOT_NAMES)].to_numpy(float)
    probs = rules.probabilities(x)
    assert probs.max() < 0.995
    labels = np.array([C.index_of(v) for v in frame["product_id"]])
    assert (probs.argmax(axis=1) == labels).mean() < 0.8


def test_budget_below_price_pushes_to_cheaper_products():
    ample = p([30, 0, 2_000_000, 3, 1, 0])
    short = p([30, 0, 700_000, 3, 1, 0])  # a laptop costs 1,500,000
    assert ample.argmax() == pid("laptop")
    assert short[pid("laptop")] < ample[pid("laptop")] / 5
    assert short.argmax() != pid("laptop")
    cheaper = [q.index for q in C if q.price_krw <= 700_000]
    assert short[cheaper].sum() > ample[cheaper].sum()


def test_budget_just_under_the_price_is_a_small_penalty():
    shifts = rules.budget_shift(np.array([1_400_000.0, 750_000.0, 0.0]), np.array([1_500_000.0]))
    assert -1.0 < shifts[0, 0] < 0
    assert shifts[1, 0] == pytest.approx(-rules.BUDGET_PENALTY)
    assert shifts[2, 0] == 0  # not stated: no effect


def test_gifts_for_people_55_and_over_lean_to_massager_and_ereader():
    probs = p([65, 0, 0, 0, 2, 0])
    top2 = set(np.argsort(-probs)[:2])
    assert top2 == {pid("massager"), pid("ereader")}
    assert probs[pid("massager")] > p([35, 0, 0, 0, 2, 0])[pid("massager")] * 2


def test_winter_lifts_consoles():
    winter = p([0, 0, 0, 0, 0, 4])[pid("console")]
    for season in (0, 1, 2, 3):
        assert winter > p([0, 0, 0, 0, 0, season])[pid("console")]


@pytest.mark.parametrize("season", [1, 3])
def test_spring_and_autumn_lift_cameras(season):
    lifted = p([0, 0, 0, 0, 0, season])[pid("camera")]
    assert lifted > p([0, 0, 0, 0, 0, 0])[pid("camera")] * 1.5
    assert lifted > p([0, 0, 0, 0, 0, 4])[pid("camera")] * 1.5


def test_students_lean_to_laptop_and_tablet():
    student, adult = p([20, 0, 0, 0, 0, 0]), p([45, 0, 0, 0, 0, 0])
    for name in ("laptop", "tablet"):
        assert student[pid(name)] > adult[pid(name)] * 1.5


def test_not_stated_slots_trigger_no_rule():
    popularity = dict(rules.RULES[0].shifts)
    logits = rules.logits(np.zeros((1, 6)))[0]
    expected = np.array([popularity.get(q.product_id, 0.0) for q in C])
    np.testing.assert_allclose(logits, expected)


def test_generation_is_deterministic_for_a_seed():
    a, b, c = generate(3000, seed=5), generate(3000, seed=5), generate(3000, seed=6)
    assert a.equals(b)
    assert not a.equals(c)


def test_generated_rows_follow_the_contract_and_leave_slots_unstated():
    frame = generate(20_000, seed=3)
    x = frame[list(SLOT_NAMES)].to_numpy(float)
    assert validate_matrix(x) == []
    assert set(frame["product_id"]) == set(C.product_ids)
    for column, share in NOT_STATED_SHARE.items():
        assert (frame[column] == 0).mean() == pytest.approx(share, abs=0.02)


def test_purchases_are_drawn_from_the_rule_probabilities():
    frame = generate(40_000, seed=4)
    x = frame[list(SLOT_NAMES)].to_numpy(float)
    labels = np.array([C.index_of(v) for v in frame["product_id"]])
    expected = rules.probabilities(x).mean(axis=0)
    observed = np.bincount(labels, minlength=len(C)) / len(labels)
    np.testing.assert_allclose(observed, expected, atol=0.01)
    # The Bayes-optimal accuracy on the rows themselves is what the probabilities predict.
    bayes = rules.bayes_predictions(x)
    assert (bayes == labels).mean() == pytest.approx(rules.probabilities(x).max(axis=1).mean(), abs=0.01)
