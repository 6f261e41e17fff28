"""Numbers in customer text (gateway/vectorizers/local/numbers.py): numerals, money, ages, months,
and the bounds every number passes before it is converted."""

from __future__ import annotations

import pytest

from gateway.vectorizers.local import default_tables, numbers
from gateway.vectorizers.local.numbers import AgeKind
from recommender.text import normalize

GRAMMAR = default_tables().grammar


def amounts(text: str) -> list[int]:
    return [a.won for a in numbers.find_amounts(normalize(text), GRAMMAR)]


def ages(text: str) -> list[tuple[int, AgeKind]]:
    return [(a.years, a.kind) for a in numbers.find_ages(normalize(text), GRAMMAR)]


@pytest.mark.parametrize(("raw", "value"), [
    ("300,000", 300_000), ("1.5", 1.5), ("007", 7), ("999999999999", 999_999_999_999),
    ("9" * 13, None), ("9" * 400, None), ("1." + "5" * 5000, 1.555555), ("0" * 50 + "12", 12),
])
def test_digits_are_bounded_before_conversion(raw, value):
    assert numbers.digits_value(raw) == value


@pytest.mark.parametrize(("word", "value"), [
    ("오십", 50), ("삼백오십만", 3_500_000), ("천오백", 1500), ("만", 10_000), ("백만", 1_000_000), ("일억", 100_000_000),
    ("삼십칠", 37), ("십", 10), ("사이", None), ("구구", None), ("십백", None), ("구" * 20, None),
])
def test_sino_korean_numerals(word, value):
    assert numbers.sino_value(word) == value


@pytest.mark.parametrize(("phrase", "value"), [
    ("thirty-six", 36), ("fifty two", 52), ("three hundred thousand", 300_000), ("one hundred and fifty", 150),
    ("two million", 2_000_000), ("nineteen", 19), ("five two", None), ("twenty thirty", None),
    (" ".join(["one"] + ["hundred"] * 20), None),
])
def test_english_number_words(phrase, value):
    assert numbers.english_value(phrase) == value


@pytest.mark.parametrize(("text", "won"), [
    ("30만원", [300_000]), ("30만", [300_000]), ("5천원", [5_000]), ("3백만원", [3_000_000]), ("1억 5천만원", [150_000_000]),
    ("3만5천원", [35_000]), ("육십만원", [600_000]), ("삼백오십만 원", [3_500_000]), ("만원", [10_000]),
    ("오십만 정도", [500_000]), ("300k won", [300_000]), ("1.5 million won", [1_500_000]), ("₩300,000", [300_000]),
    ("500 thousand won", [500_000]), ("three hundred thousand won", [300_000]), ("budget 300k", [300_000]),
    ("under 300,000", [300_000]), ("10~20만원", [200_000]), ("between fifty and eighty thousand won", [80_000]),
    ("I run 5k every day", []), ("010-1234-5678", []), ("2024년 5월", []), ("만 65세", []), ("20억", []),
    ("9" * 400 + "원", []), ("9" * 5000 + " million won", []),
])
def test_amounts(text, won):
    assert amounts(text) == won


@pytest.mark.parametrize(("text", "found"), [
    ("25살", [(25, AgeKind.STATED)]), ("25세", [(25, AgeKind.STATED)]), ("스물여섯 살", [(26, AgeKind.STATED)]),
    ("마흔둘 아저씨", [(42, AgeKind.STATED)]), ("서른이에요", [(30, AgeKind.STATED)]), ("삼십칠 세", [(37, AgeKind.STATED)]),
    ("30대 초반", [(32, AgeKind.DECADE)]), ("삼십대", [(35, AgeKind.DECADE)]), ("early 30s", [(32, AgeKind.DECADE)]),
    ("late thirties", [(38, AgeKind.DECADE)]), ("thirty-something", [(35, AgeKind.DECADE)]), ("teenager", [(15, AgeKind.DECADE)]),
    ("a 25-year-old", [(25, AgeKind.STATED)]), ("I'm 31", [(31, AgeKind.STATED)]), ("turning sixty-six", [(66, AgeKind.STATED)]),
    ("70th birthday", [(70, AgeKind.STATED)]), ("sixtieth birthday", [(60, AgeKind.STATED)]),
    # not ages
    ("3세대 에어팟", []), ("노트북 살까", []), ("the 90s", []), ("90s music", []), ("budget is 50", []),
    ("she is 5 minutes away", []), ("200살", []), ("9" * 400 + "살", []), ("올해 5월", []),
])
def test_ages(text, found):
    assert ages(text) == found


@pytest.mark.parametrize(("text", "seasons"), [
    ("3월", [1]), ("12 월", [4]), ("6월이랑 9월", [2, 3]), ("월급", []), ("3개월", []), ("13월", []), ("9" * 400 + "월", []),
])
def test_months(text, seasons):
    assert [s for _, s in numbers.find_months(normalize(text))] == seasons
