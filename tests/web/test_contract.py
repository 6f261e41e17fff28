"""web/contract.js: current with recommender/schema.py, and every quick reply says what it
claims (the local vectorizer reads its slot value from it and nothing else)."""

from __future__ import annotations

import importlib.util

import pytest

from recommender import schema
from tests.support import ROOT


def _build_contract():
    spec = importlib.util.spec_from_file_location("web_build_contract", ROOT / "web" / "build_contract.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_contract = _build_contract()


def test_contract_js_equals_a_fresh_generation():
    assert build_contract.main(["--check"]) == 0, "web/contract.js is stale: run `make web-contract`"


def test_contract_carries_the_schema():
    contract = build_contract.contract()
    assert contract["maxTextChars"] == schema.MAX_TEXT_CHARS
    assert [s["name"] for s in contract["slots"]] == list(schema.SLOT_NAMES)
    assert contract["products"]["console"] == {"en": "Game console", "ko": "게임 콘솔", "priceKrw": 500_000}
    interest = contract["slots"][schema.INTEREST]
    assert interest["slotEnum"] == "SLOT_INTEREST"
    assert {"value": 5, "key": "gaming", "en": "gaming", "ko": "게임", "enum": "INTEREST_GAMING"} in interest["codes"]


def _chips():
    for slot, by_language in build_contract.QUICK_REPLIES.items():
        for language, rows in by_language.items():
            for text, value in rows:
                yield pytest.param(text, slot, value, id=f"{slot}-{language}-{text}")
    for language, rows in build_contract.DEFAULT_QUICK_REPLIES.items():
        for text, slot, value in rows:
            yield pytest.param(text, slot, value, id=f"default-{language}-{text}")


@pytest.fixture(scope="module")
def vectorizer():
    from gateway.vectorizers.local import LocalVectorizer

    return LocalVectorizer()


@pytest.mark.parametrize(("text", "slot", "value"), list(_chips()))
def test_quick_reply_states_its_slot_only(vectorizer, text, slot, value):
    features = list(vectorizer.vectorize(text).features)
    index = schema.SLOT_BY_NAME[slot].index
    assert features[index] == float(value), f"{text!r} reads as {features}"
    others = {schema.SLOTS[i].name: v for i, v in enumerate(features) if i != index and v}
    # A bare answer with no other person in it reads as own use (the vectorizer's rule for
    # text alone); nothing else may come along with a chip.
    assert others in ({}, {"purpose": 1.0}), f"{text!r} also states {others}"
