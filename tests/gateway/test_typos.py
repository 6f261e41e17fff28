"""Typo tolerance of the local vectorizer (gateway/vectorizers/local/typos.py): a looser second
reading of interest and gender that only runs when the exact phrases found nothing."""

from __future__ import annotations

import pytest

from gateway.vectorizers.local import extract_features, typos
from gateway.vectorizers.local.tables import Entry, load_tables

AGE, GENDER, BUDGET, INTEREST, PURPOSE, SEASON = range(6)


@pytest.mark.parametrize(("typo", "right"), [("카매라", "카메라"), ("스마트와치", "스마트워치"), ("잇어요", "있어요"),
                                             ("제고", "재고"), ("왜", "웨")])
def test_folding_makes_confused_vowels_and_finals_equal_and_keeps_positions(typo, right):
    assert typos.fold_hangul(typo) == typos.fold_hangul(right)
    assert len(typos.fold_hangul(typo)) == len(typo)


def test_folding_leaves_other_text_alone():
    assert typos.fold_hangul("Hello 캐메라 123 ㅋㅋ!") == "Hello 케메라 123 ㅋㅋ!"
    assert typos.fold_hangul("가나다") == "가나다"


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("reading", "readign", True),  # swap of neighbours
    ("grandma", "grandmaa", True),  # insertion
    ("camera", "camra", True),  # deletion
    ("coding", "coming", True),  # substitution
    ("reading", "raeding", True),
    ("reading", "reading", False),
    ("reading", "raedign", False),  # two edits
    ("headphones", "headfones", False),
])
def test_one_edit_apart(a, b, expected):
    assert typos.one_edit_apart(a, b) is expected
    assert typos.one_edit_apart(b, a) is expected


def _index(*words: str, near=()) -> typos.EnglishTypos:
    return typos.EnglishTypos({w: Entry(w, "reading", 7, "strong", 2, "test") for w in words}, near)


def test_english_typos_need_five_letters_and_the_same_first_letter():
    index = _index("reading", "books")
    assert index.candidates("readign") == ["reading"]
    assert index.candidates("beading") == []  # first letter differs
    assert index.candidates("bokos") == ["books"]
    assert index.candidates("boks") == []  # four letters: too short to guess


def test_real_words_near_a_phrase_are_never_corrected():
    index = _index("coding", near=["coming"])
    assert index.candidates("codng") == ["coding"]
    assert index.candidates("coming") == []


def test_the_near_words_file_lists_dictionary_words_next_to_phrases():
    near = set(typos.near_words(["coding", "reading", "spring"], ["coming", "leading", "table", "Coming", "sprint"]))
    assert {"coming", "sprint", "sprints", "comings"} <= near  # regular inflections of listed words too
    assert not near & {"leading", "table", "Coming"}  # other first letter; too far; not lower case


def test_the_near_words_file_is_current():
    """Regenerate with `python -m gateway.vectorizers.local.typos --write` after editing en.toml."""
    english_words = pytest.importorskip("english_words")
    dictionary = english_words.get_english_words_set(["web2", "gcide"], lower=True, alpha=True)
    assert typos.near_words(typos._vocabulary(), dictionary) == typos.load_near_words()


@pytest.mark.parametrize(("text", "interest"), [
    ("아버지 선물 카매라 50만원 이내", 6),
    ("스마트와치 제가쓸거 30만원이하요", 2),
    ("gift for my grandmaa who loves readign", 7),
    ("lookin for a new camra for my trip", 6),
    ("내일까지 받을 수 있어요?", 0),  # 내일 folds to 네일 (nail): two syllables are never read folded
    ("I'm coming home late, what's popular?", 0),  # "coming" is a word, not "coding" misspelt
])
def test_typos_are_read_when_nothing_spelt_right_names_the_slot(text, interest):
    assert extract_features(text)[INTEREST] == interest


def test_a_typo_never_outvotes_a_word_spelt_right():
    # "camra" would be a camera; the exact "headphones" decides
    assert extract_features("headphones for my camra bag trips")[INTEREST] == 1


def test_gender_typos_name_the_person():
    features = extract_features("gift for my grandmaa who loves reading")
    assert (features[GENDER], features[PURPOSE]) == (1, 2)


def test_purpose_typos_say_who_it_is_for():
    assert extract_features("wireles earbuds for myslef plz")[PURPOSE] == 1
    assert extract_features("a presnt for my grandpa")[PURPOSE] == 2


def test_typo_readers_exist_for_interest_gender_and_purpose_only_and_fold_hangul_for_interest():
    tables = load_tables()
    assert set(tables.english_typos) == {"interest", "gender", "purpose", "season"}
    assert set(tables.folded) == {"interest"}
    assert tables.hits("age", "teenagr", (True, False)) == []
    assert tables.hits("season", "in octobr", (True, False))[0].value == 3


def test_the_command_counts_and_writes_the_near_words_file(tmp_path, monkeypatch, capsys):
    english_words = pytest.importorskip("english_words")
    # a small dictionary stands in for the real one (read once, by the test above)
    monkeypatch.setattr(english_words, "get_english_words_set", lambda *a, **k: {"coming", "readings", "zebra"})
    monkeypatch.setattr(typos, "_vocabulary", lambda: ["coding", "reading"])
    target = tmp_path / "en_near_words.txt"
    monkeypatch.setattr(typos, "NEAR_WORDS_FILE", target)
    assert typos.main([]) == 0
    written = typos.near_words(["coding", "reading"], ["coming", "readings", "zebra"])
    assert "coming" in written and "zebra" not in written
    assert capsys.readouterr().out.strip() == f"{len(written)} near words"
    assert not target.exists()  # counting only
    assert typos.main(["--write"]) == 0
    assert typos.load_near_words(target) == written
