"""The phrase tables (gateway/vectorizers/local/phrases/*.toml, compiled by tables.py): a new phrase
is one line, flags work, and a broken table fails at start with a message naming the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.vectorizers.local import LocalVectorizer, tables
from gateway.vectorizers.local.tables import PhraseTableError, load_tables

INTEREST = 3


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_default_tables_load_and_cover_every_code():
    loaded = load_tables()
    assert loaded.phrase_count() > 1000
    assert set(loaded.slots) == {"interest", "gender", "purpose", "season", "age"}
    for slot in ("interest", "gender", "purpose", "season"):
        keys = {e.key for e in loaded.slots[slot]._exact.values()}
        codes = {c.key for c in tables.schema.SLOT_BY_NAME[slot].codes}
        assert codes <= keys, f"{slot}: no phrases for {codes - keys}"


def test_a_new_phrase_in_a_table_changes_the_output(tmp_path):
    text = "요즘 플로깅에 빠졌어요"
    assert LocalVectorizer().features(text)[INTEREST] == 0
    extra = write(tmp_path, "extra.toml", '[interest.fitness]\nstrong = ["플로깅"]\n')
    widened = LocalVectorizer(load_tables([*tables.DEFAULT_FILES, extra]))
    assert widened.features(text)[INTEREST] == 2
    assert widened.features("scuba diving") == LocalVectorizer().features("scuba diving")  # nothing else moved


def test_matching_rules(tmp_path):
    path = write(tmp_path, "t.toml", """
[interest.reading]
strong = ["book", "^책", "읽기$", "photograph*"]
[interest.photo_travel]
strong = ["k pop"]
[interest.none]
ignore = ["책상"]
""")
    matcher = load_tables([path]).slots["interest"]

    def keys(text):
        return [text[h.start:h.end] for h in matcher.hits(text)]

    assert keys("books bookshelf notebook book") == ["books", "book"]  # Latin: whole words, plural
    assert keys("책을 읽기 좋아 만화책") == ["책", "읽기"]  # ^: word start ("만화책" has 화 before 책)
    assert keys("읽기도") == []  # $: word end
    assert keys("책상 책") == ["책"]  # the longer look-alike under none wins and means nothing
    assert keys("photography photographer photo") == ["photography", "photographer"]  # * stem
    assert keys("k-pop kpop k pop") == ["k-pop", "kpop", "k pop"]  # a space matches space, hyphen or nothing


@pytest.mark.parametrize(("files", "message"), [
    ({"a.toml": '[interest.fitnes]\nstrong = ["gym"]\n'}, "unknown key 'fitnes' for interest"),
    ({"a.toml": '[colour.red]\nstrong = ["red"]\n'}, "unknown section [colour]"),
    ({"a.toml": '[interest.fitness]\nmighty = ["gym"]\n'}, "unknown strength 'mighty'"),
    ({"a.toml": '[interest.fitness]\nstrong = ["gym", "gym"]\n'}, "already listed"),
    ({"a.toml": '[interest.fitness]\nstrong = ["gym"]\n', "b.toml": '[interest.gaming]\nstrong = ["GYM"]\n'},
     "already listed in a.toml [interest.fitness]"),
    ({"a.toml": '[interest.fitness]\nstrong = ["스마트 워치"]\nweak = ["스마트워치"]\n'}, "already listed"),
    ({"a.toml": '[interest.fitness]\nstrong = ["^gym"]\n'}, "Latin phrases are whole words already"),
    ({"a.toml": '[interest.fitness]\nstrong = ["gy*m"]\n'}, "malformed phrase"),
    ({"a.toml": '[interest.fitness]\nignore = ["gym"]\n'}, "'ignore' lists belong under [interest.none]"),
    ({"a.toml": '[age.150]\nstage = ["elder"]\n'}, "unknown key '150' for age"),
    ({"a.toml": '[grammar]\nwhatever = ["x"]\n'}, "unknown grammar list"),
    ({"a.toml": '[interest.fitness]\nstrong = "gym"\n'}, "expected a list of phrases"),
    ({"a.toml": '[interest.fitness\n'}, "cannot read phrase table"),
])
def test_broken_tables_fail_at_start_with_a_clear_message(tmp_path, files, message):
    paths = [write(tmp_path, name, text) for name, text in files.items()]
    with pytest.raises(PhraseTableError) as caught:
        load_tables(paths)
    assert message in str(caught.value)
