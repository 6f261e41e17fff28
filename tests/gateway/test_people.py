"""Who the product is for (gateway/vectorizers/local/people.py): speaker vs recipient, purpose,
corrections, and whose age and gender count."""

from __future__ import annotations

import pytest

from gateway.vectorizers.local import default_tables, people
from gateway.vectorizers.local.numbers import AgeKind, AgeMention
from gateway.vectorizers.local.people import Mention, Purpose, Role
from recommender.text import normalize

TABLES = default_tables()
GRAMMAR = TABLES.grammar


def found_people(text: str) -> tuple[str, list[people.Person]]:
    norm = normalize(text)
    markers = people.SpeakerMarkers(norm, GRAMMAR, (True, True))
    return norm, people.find_people(norm, TABLES.slots["gender"].hits(norm), markers, GRAMMAR)


@pytest.mark.parametrize(("text", "roles"), [
    ("엄마 선물", [Role.RECIPIENT]),
    ("저는 30대 여성인데", [Role.SPEAKER]),
    ("I'm a dad looking for a gift for my son", [Role.SPEAKER, Role.RECIPIENT]),
    ("with my wife", [Role.COMPANION]),
    ("엄마랑 같이 쓸", [Role.COMPANION]),
    ("my partner says I should get one", [Role.ADVISOR]),
    ("친구가 안마기 써보라고 해서", [Role.ADVISOR]),
])
def test_roles(text, roles):
    assert [p.role for p in found_people(text)[1]] == roles


def test_kinship_gives_gender_and_neutral_people_none():
    _, mentions = found_people("딸 아들 친구 she")
    assert [(p.gender, p.mention) for p in mentions] == [
        (1, Mention.PERSON), (2, Mention.PERSON), (0, Mention.PERSON), (1, Mention.PRONOUN)]


def test_look_alike_words_are_no_people():
    assert found_people("딸기 이모티콘 아이패드")[1] == []


def signal(position: int, purpose: Purpose, strength: int) -> people.Signal:
    return people.Signal(position, purpose, strength)


@pytest.mark.parametrize(("text", "signals", "describes_self", "purpose"), [
    ("", [], False, Purpose.NOT_STATED),
    ("", [], True, Purpose.SELF),  # no one else named, the speaker talks about their own use
    ("x", [signal(0, Purpose.SELF, 1), signal(5, Purpose.GIFT, 1)], False, Purpose.GIFT),  # a recipient beats "I need"
    ("x", [signal(0, Purpose.SELF, 2), signal(5, Purpose.GIFT, 1)], False, Purpose.SELF),  # "제가 쓸" beats a person
    ("x", [signal(0, Purpose.SELF, 2), signal(5, Purpose.GIFT, 2)], False, Purpose.GIFT),  # gift word beats self word
    ("x", [signal(0, Purpose.SELF, 3), signal(5, Purpose.GIFT, 2)], False, Purpose.SELF),  # "나한테 선물"
    # after a correction the signals that follow it win
    ("a gift for my dad. actually it's for me", [signal(2, Purpose.GIFT, 2), signal(30, Purpose.SELF, 2)], False,
     Purpose.SELF),
    ("아빠 선물인데 아 아니 제가 쓸 거예요", [signal(3, Purpose.GIFT, 2), signal(13, Purpose.SELF, 2)], False, Purpose.SELF),
    # ... when they state a purpose or name someone; a bare "I" after a corrected date does not
    ("a gift for my brother, actually in may, i always mix it up", [signal(2, Purpose.GIFT, 2), signal(39, Purpose.SELF, 1)],
     False, Purpose.GIFT),
    ("for me, actually for my wife", [signal(0, Purpose.SELF, 2), signal(26, Purpose.GIFT, 1)], False, Purpose.GIFT),
])
def test_decide_purpose(text, signals, describes_self, purpose):
    assert people.decide_purpose(text, signals, GRAMMAR, describes_self) is purpose


@pytest.mark.parametrize(("text", "purpose", "gender"), [
    ("저는 남자인데 여자친구 선물", Purpose.GIFT, 1),  # the recipient's gender, not the speaker's
    ("I'm a woman buying a gift for my husband", Purpose.GIFT, 2),
    ("I'm a woman looking for a gift for a friend", Purpose.GIFT, 0),
    ("I'm a 24-year-old man", Purpose.SELF, 2),
    ("애 둘 엄마인데 제가 쓸 안마기", Purpose.SELF, 1),  # "엄마인데": the speaker
    ("with my wife, a camera for me", Purpose.SELF, 0),  # a companion's gender is not the user's
    ("my son and my daughter", Purpose.GIFT, 0),  # words that disagree say nothing
])
def test_decide_gender(text, purpose, gender):
    assert people.decide_gender(purpose, found_people(text)[1]) == gender


def test_decide_age_drops_the_speakers_age_in_a_gift():
    text = normalize("I'm 35 and looking for a gift for my 60-year-old dad")
    markers = people.SpeakerMarkers(text, GRAMMAR, (True, False))
    ages = [AgeMention(4, 6, 35, AgeKind.STATED), AgeMention(text.index("60"), text.index("60") + 11, 60, AgeKind.STATED)]
    assert people.decide_age(Purpose.GIFT, ages, markers) == 60
    assert people.decide_age(Purpose.SELF, ages, markers) == 35
    assert people.decide_age(Purpose.NOT_STATED, [AgeMention(0, 3, 17, AgeKind.STAGE),
                                                  AgeMention(5, 8, 16, AgeKind.STATED)], markers) == 16


@pytest.mark.parametrize(("text", "basis"), [
    ("50대", people.Basis.INFERRED),  # a bare self-description: own use only by default
    ("여성", people.Basis.INFERRED),
    ("hiking", people.Basis.INFERRED),
    ("I need a laptop for my classes", people.Basis.INFERRED),
    ("제가 쓸 거예요", people.Basis.STATED),
    ("for me", people.Basis.STATED),
    ("actually it's for me", people.Basis.STATED),
    ("actually I need it", people.Basis.STATED),  # a correction states it
    ("엄마 선물", people.Basis.STATED),
    ("for my son", people.Basis.STATED),
    ("30만원", people.Basis.NOT_STATED),
])
def test_purpose_basis_says_whether_purpose_was_stated(text, basis):
    from gateway.vectorizers.local import LocalVectorizer

    vectorizer = LocalVectorizer(TABLES)
    assert vectorizer.read(text)[1] is basis
    assert vectorizer.vectorize(text).purpose_stated is (basis is not people.Basis.INFERRED)


@pytest.mark.parametrize(("text", "purpose"), [
    ("저한테 뭔가 선물하고 싶은데", Purpose.SELF),  # the speaker is the gift's recipient
    ("나를 위한 작은 선물", Purpose.SELF),
    ("저한테 추천해 주세요. 엄마 선물이에요", Purpose.GIFT),  # another sentence: not the gift's recipient
    ("엄마가 에어프라이어 사라고 하시는데", Purpose.NOT_STATED),  # the honorific speaks of the advisor
    ("엄마가 에어프라이어 좋아하셔서", Purpose.GIFT),
])
def test_purpose_from_signals(text, purpose):
    norm = normalize(text)
    markers = people.SpeakerMarkers(norm, GRAMMAR, (True, True))
    mentions = people.find_people(norm, TABLES.slots["gender"].hits(norm), markers, GRAMMAR)
    signals = people.purpose_signals(norm, TABLES.slots["purpose"].hits(norm), mentions, GRAMMAR)
    assert people.decide_purpose(norm, signals, GRAMMAR, False) is purpose
