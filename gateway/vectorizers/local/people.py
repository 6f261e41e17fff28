"""Who the product is for: the speaker or someone else, and so whose age and gender count.

Grammar over the phrase tables' hits: the words themselves (엄마, wife, 선물, 제가 쓸...) are data in
phrases/*.toml; this module decides what they mean together.

- A person mentioned is the speaker's self-description ("저는 30대 여성", "I'm a dad", "dad of two
  here") when a speaker marker comes shortly before with no turn to someone else in between; a
  companion when the product is shared or the thing done with them ("with my wife", "엄마랑 같이",
  "친구들이랑 마리오카트", "부모님 모시고"); an advisor ("친구가 추천", "my partner says"); the
  speaker's circumstance ("아기 재우고 나면", "룸메가 코를 골아서", "because of my kids"); the one
  spoken to ("형 나 노래 들을 거", "bro i need"); named and taken back ("엄마가 아니라 아빠",
  "엄마랑 아빠 중에 ... 아빠로 정했어요"); otherwise a recipient. Only recipients (and the speaker)
  say who the user is.
- purpose: strong words decide (gift words, "제가 쓸", "for myself"), gift before self; then weak
  ones (a recipient named, "I need"), where a person named and then, in the same sentence, the
  speaker naming themselves is the speaker's situation ("my boss dumps spreadsheets on me",
  speaker_turn); after a correction ("actually it's for me", "아 제가 쓸 거예요") the first signal
  after it wins. With no sign of another person, a speaker who talks about their own use, need,
  body or situation buys for themselves.
- gender and age describe the USER: in a gift the recipient's words win and the speaker's are
  dropped; for own use the speaker's win.
"""

from __future__ import annotations

import bisect
import dataclasses
import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.vectorizers.local.numbers import AgeMention
from gateway.vectorizers.local.tables import Hit, Matcher
from recommender import schema


class Purpose(enum.IntEnum):
    NOT_STATED = 0
    SELF = schema.SLOT_BY_NAME["purpose"].codes[0].value
    GIFT = schema.SLOT_BY_NAME["purpose"].codes[1].value


assert schema.PURPOSES[0].key == "self" and schema.PURPOSES[1].key == "gift"


class Role(enum.Enum):
    RECIPIENT = "recipient"  # someone the product may be for
    SPEAKER = "speaker"  # the speaker describing themselves
    COMPANION = "companion"  # someone who shares the product ("with my wife")
    ADVISOR = "advisor"  # someone who advises the speaker ("my partner says", "친구가 추천")
    CONTEXT = "context"  # the speaker's circumstance ("아기 재우고 나면", "because of my kids")
    ADDRESSEE = "addressee"  # the one spoken to ("형 나 노래 들을 거 추천 좀", "bro i need earbuds")
    TAKEN_BACK = "taken_back"  # named, then corrected ("엄마가 아니라 아빠 생신이에요")


# Roles that say nothing about who the user is.
BYSTANDERS = frozenset({Role.COMPANION, Role.ADVISOR, Role.CONTEXT, Role.ADDRESSEE, Role.TAKEN_BACK})


class Mention(enum.Enum):
    PERSON = "person"  # 엄마, wife, 친구: a relation (gendered or neutral)
    WORD = "word"  # 여자, man: says a gender, not that someone else is the user
    PRONOUN = "pronoun"  # she, him: weakest evidence


@dataclass(frozen=True)
class Person:
    start: int
    end: int
    gender: int  # 0 neutral
    mention: Mention
    role: Role
    copula: bool = False  # "엄마인데": may be the speaker describing themselves


@dataclass(frozen=True)
class Signal:
    position: int
    purpose: Purpose
    strength: int  # 3 reflexive ("나한테 선물"), 2 strong (선물, "제가 쓸"), 1 weak (a person, "I need")
    speaker: bool = False  # the speaker naming themselves ("제가", "I", "me")
    person: bool = False  # someone else named ("룸메이트", "my boss", 시키셔서), not only a pronoun


SPEAKER_WINDOW = 30  # characters between "저는"/"I'm" and the word it describes
CONTEXT_WINDOW = 12  # characters after a person in which "데려다주고" makes them circumstance
_FIRST_PERSON = ("i ", "i'", "my ", "me ", "we ", "제가", "제 ", "저는", "저도", "저 ", "내가", "나는", "나도", "내 ")
_ADJACENT_ONLY = ("때문", "덕분", "보느라", "사진")  # "여친이 웹소설 보느라": her doing, not her being looked after
_POSSESSIVE = ("my ", " 제 ", " 내 ")
# "for my mentor", "for our twin boys": ends right before the person (one word may come between)
_FOR_PERSON = re.compile(r"\bfor (?:my|our|a|an|the|his|her)(?: [a-z'-]+)? $")
_TO_PERSON = ("한테", "에게", "께", "들한테", "들에게", " 줄", " 드릴")
_SENTENCE_BREAKS = frozenset(".!?;\nㅠㅜㅋ")  # chat ends sentences with ㅠㅠ, ㅋㅋ too
_AGE_WORDS = ("early", "mid", "late", "twen", "thir", "fort", "fift", "sixt", "sevent", "eight", "nint", "teen")


class SpeakerMarkers:
    """Where the speaker starts describing themselves, and whether a mention is in that description."""

    def __init__(self, text: str, grammar: Mapping[str, Matcher], scripts: tuple[bool, bool]):
        self.text = text
        self.grammar = grammar
        self.ends = [h.end for h in grammar["speaker"].hits(text, scripts)]

    def describes(self, start: int) -> bool:
        text = self.text
        if text[max(0, start - 6):start].endswith("in my "):
            return True
        i = bisect.bisect_right(self.ends, start)
        if not i:
            return False
        gap_start = self.ends[i - 1]
        if start - gap_start > SPEAKER_WINDOW:
            return False
        if any(c in _SENTENCE_BREAKS for c in text[gap_start:start]):
            return False
        for hit in self.grammar["speaker_break"].hits(text[gap_start:start]):
            word = text[gap_start + hit.start:gap_start + hit.end]
            following = text[gap_start + hit.end:start].lstrip()
            if word == "my" and (not following or following[0].isdigit() or following.startswith(_AGE_WORDS)):
                continue  # "I'm in my 30s": still the speaker
            return False
        return True


# "친구들이랑 마리오카트 하려고": a person the speaker does something with (unless another person
# follows: "엄마랑 아빠 선물" names two recipients)
_ANNIVERSARY = re.compile(r"\s?(?:\d+\s?(?:일|주년|개월)|기념일|결혼기념|사귄 지)")
_WITH_PARTICLE = re.compile(r"들?(?:이랑|랑|하고|와|과)(?=[\s,.!]|$)")
# "형 나 노래 들을 거": a person named first and then the speaker: spoken to, not about
_ADDRESS = re.compile(r"[\s,!~]+(?:나|저|내가|제가|난|전|i|i'm|im|i've|i'd)(?=\s)")
# "Grandpa, I found the one you wanted": the one spoken to is the one it is for
_SECOND_PERSON = re.compile(r"\b(?:you|your|u)\b|당신|니가|네가|드릴|드려")
_VOCATIVES = frozenset({"dude", "bro", "sis", "bruh", "man", "guys"})  # "dude my skin is so bad lately"
_INTERJECTION = re.compile(r"(?:아|야|저기|음|헐|근데)?[\s,]*")
_PARTICLES_BEFORE_VERB = re.compile(r"(?:들)?(?:을|를|이|가|은|는|도)?\s?")


def find_people(text: str, hits: Sequence[Hit], markers: SpeakerMarkers,
                grammar: Mapping[str, Matcher]) -> list[Person]:
    people = []
    starts = [h.start for h in hits]
    for hit in hits:
        mention = Mention(hit.group)
        if mention is not Mention.PRONOUN and not text.startswith(_POSSESSIVE, max(0, hit.start - 3)) and (
                markers.describes(hit.start)
                or grammar["speaker_after"].match_at(text, hit.end + (text[hit.end:hit.end + 1] == " "))):
            role = Role.SPEAKER  # (never "my husband", "제 여자친구": the speaker's someone)
        elif mention is Mention.PERSON and (grammar["with_before"].ending_at(text, hit.start, window=10)
                                            or grammar["with_after"].match_at(text, hit.end)
                                            or grammar["with_after"].match_at(text, hit.end + 1)
                                            or _does_with(text, hit, starts)):
            role = Role.COMPANION
        elif mention is Mention.PERSON and grammar["person_negation_after"].match_at(text, hit.end):
            role = Role.TAKEN_BACK
        elif mention is Mention.PERSON and _advises(text, hit, grammar):
            role = Role.ADVISOR
        elif mention is Mention.PERSON and (_circumstance(text, hit, grammar) or _possessor(text, hit, starts)):
            role = Role.CONTEXT
        elif _INTERJECTION.fullmatch(text, 0, hit.start) and not _SECOND_PERSON.search(text) and (
                (mention is Mention.PERSON and _ADDRESS.match(text, hit.end))
                or (text[hit.start:hit.end] in _VOCATIVES and text[hit.end:hit.end + 1] in (" ", ",", "!"))):
            role = Role.ADDRESSEE
        else:
            role = Role.RECIPIENT
        copula = mention is Mention.PERSON and grammar["speaker_copula_after"].match_at(text, hit.end) is not None
        people.append(Person(hit.start, hit.end, hit.value, mention, role, copula))
    decided = [p for p in people if p.role is Role.RECIPIENT and grammar["decision_after"].match_at(text, p.end)]
    if decided:  # "엄마랑 아빠 중에 고민했는데 아빠로 정했어요": the others are taken back
        chosen = {text[p.start:p.end] for p in decided}
        people = [dataclasses.replace(p, role=Role.TAKEN_BACK)
                  if p.role is Role.RECIPIENT and text[p.start:p.end] not in chosen else p for p in people]
    taken_back = {text[p.start:p.end] for p in people if p.role is Role.TAKEN_BACK}
    if taken_back:  # "엄마 선물을 사려고 하는데요, 아 엄마가 아니라": every mention of mom is taken back
        people = [dataclasses.replace(p, role=Role.TAKEN_BACK)
                  if text[p.start:p.end] in taken_back and p.role is not Role.SPEAKER else p for p in people]
    return people


def _does_with(text: str, hit: Hit, starts: Sequence[int]) -> bool:
    m = _WITH_PARTICLE.match(text, hit.end)
    if m is None or _ANNIVERSARY.match(text, m.end()):
        return False  # "남자친구랑 100일인데": an anniversary with them, a gift for them
    following = m.end() + len(text[m.end():]) - len(text[m.end():].lstrip(" ,"))
    return not any(following <= s <= following + 1 for s in starts)


def _circumstance(text: str, hit: Hit, grammar: Mapping[str, Matcher]) -> bool:
    """"아기 재우고 나면", "애들 때문에", "딸 학원 데려다주고", "because of my kids": the person is
    part of the speaker's situation (the words follow in the same clause, a noun may come between)."""
    after = _PARTICLES_BEFORE_VERB.match(text, hit.end)
    start = after.end() if after else hit.end
    if grammar["context_after"].match_at(text, start):
        return True
    window = text[start:start + CONTEXT_WINDOW]
    clause = min((i for i in (window.find(c) for c in ",.!?") if i >= 0), default=len(window))
    found = grammar["context_after"].search(text, start, start + clause)
    if found is not None and not text.startswith(_ADJACENT_ONLY, found.start):  # "엄마 피부 때문에": mom's skin
        return True  # a few words between: "딸 학원 데려다주고", "룸메가 코를 너무 골아서"
    return grammar["context_before"].ending_at(text, hit.start, window=24) is not None


def _possessor(text: str, hit: Hit, starts: Sequence[int]) -> bool:
    """"my girlfriend's dad", "친구의 엄마": the person whose relative it is, not the user."""
    for mark in ("'s ", "의 "):
        if text.startswith(mark, hit.end) and hit.end + len(mark) in starts:
            return True
    return False


def _named_for(text: str, person: Person, grammar: Mapping[str, Matcher]) -> bool:
    """"for my mentor", "조카한테", "아빠께", "Grandpa, I found the one you wanted": the person is
    named as the one the product is for."""
    if _FOR_PERSON.search(text, max(0, person.start - 24), person.start) or text.startswith(_TO_PERSON, person.end):
        return True
    return _INTERJECTION.fullmatch(text, 0, person.start) is not None and text.startswith(",", person.end) \
        and _SECOND_PERSON.search(text) is not None


def _advises(text: str, hit: Hit, grammar: Mapping[str, Matcher]) -> bool:
    """"my partner says", "친구가 추천", "친구가 안마기 써보라고 해서": the person advises the speaker."""
    after = hit.end + (text[hit.end:hit.end + 1] == " ")
    if grammar["advisor_after"].match_at(text, after):
        return True
    if text[hit.end:hit.end + 1] not in ("가", "이"):
        return False
    window_end = min(len(text), hit.end + 40)
    clause_end = min((i for i in (text.find(c, hit.end, window_end) for c in ".!?,") if i >= 0), default=window_end)
    return grammar["advice"].search(text, hit.end, clause_end) is not None


def _negated_gift(text: str, hit: Hit, grammar: Mapping[str, Matcher]) -> bool:
    """"선물 아니고", "선물용 아님", "not a gift"."""
    pos = hit.end
    if grammar["particle"].match_at(text, pos):
        pos = grammar["particle"].match_at(text, pos).end
    pos += text[pos:pos + 1] == " "
    if grammar["gift_negation_after"].match_at(text, pos):
        return True
    return grammar["gift_negation_before"].ending_at(text, hit.start, window=16) is not None


SELF_GIFT_WINDOW = 24  # characters between "저한테"/"나를 위한" and the gift word it names ("나한테 reward 로 console 사줄")


def _gift_to_self(text: str, hit: Hit, grammar: Mapping[str, Matcher]) -> bool:
    """"저한테 뭔가 선물하고 싶은데", "나를 위한 작은 선물": the speaker is the gift's recipient."""
    if hit.group != "strong":
        return False
    start = max(0, hit.start - SELF_GIFT_WINDOW)
    found = grammar["self_recipient"].search(text, start, hit.start)
    return found is not None and not any(c in _SENTENCE_BREAKS for c in text[found.end:hit.start])


def purpose_signals(text: str, purpose_hits: Sequence[Hit], people: Sequence[Person],
                    grammar: Mapping[str, Matcher]) -> list[Signal]:
    signals = []
    # honorifics (-시-, 께서) speak of someone else; when everyone named only advises the
    # speaker or shares the product ("엄마가 사라고 하시는데"), they speak of that person
    only_advisors = any(p.role in BYSTANDERS for p in people) and not any(
        p.role is Role.RECIPIENT and p.mention is not Mention.WORD for p in people)
    for hit in purpose_hits:
        if hit.key == "gift":
            if hit.group == "weak" and only_advisors:
                continue
            if _gift_to_self(text, hit, grammar):
                signals.append(Signal(hit.start, Purpose.SELF, 3))  # "저한테 뭔가 선물하고 싶은데"
            elif not _negated_gift(text, hit, grammar):
                # an honorific ("시키셔서") speaks of a person already named
                signals.append(Signal(hit.start, Purpose.GIFT, hit.strength, person=hit.group == "weak"))
        else:
            speaker = hit.group == "speaker" or text.startswith(_FIRST_PERSON, hit.start)
            signals.append(Signal(hit.start, Purpose.SELF, hit.strength, speaker=speaker))
    for person in people:
        if person.role in BYSTANDERS:
            continue
        if person.mention is Mention.PERSON:  # "저는 엄마인데" / "for my mom"
            # "for my mentor who got me through": named as the one it is for, whatever follows
            signals.append(Signal(person.start, Purpose.SELF if person.role is Role.SPEAKER else Purpose.GIFT, 1,
                                  person=person.role is not Role.SPEAKER and not _named_for(text, person, grammar)))
        elif person.mention is Mention.PRONOUN:  # "she hikes every weekend": someone else
            signals.append(Signal(person.start, Purpose.GIFT, 1))
        elif _FOR_PERSON.search(text, max(0, person.start - 24), person.start) or \
                text[max(0, person.start - 3):person.start] == "우리 ":  # "for our twin boys", "우리 twin boys가"
            signals.append(Signal(person.start, Purpose.GIFT, 1))
    return signals


def decide_purpose(text: str, signals: Sequence[Signal], grammar: Mapping[str, Matcher],
                   describes_self: bool) -> Purpose:
    """The purpose from its signals. With none, `describes_self` (the speaker states their own
    age, gender, use, hobby, body or situation, and no one else is named) means own use."""
    if not signals:
        return Purpose.SELF if describes_self else Purpose.NOT_STATED
    corrections = grammar["correction"].hits(text)
    if corrections:
        # what follows a correction decides when it names a purpose outright or someone else;
        # a bare "I ..." after "actually it's in May" corrects a date, not who it is for
        after = [s for s in signals if s.position >= corrections[-1].end]
        if any(s.strength >= 2 or s.purpose is Purpose.GIFT for s in after):
            signals = after
        elif any(s.speaker for s in after) and all(s.strength == 1 and s.person for s in signals
                                                   if s.purpose is Purpose.GIFT):
            return Purpose.SELF  # "조카 둘이 놀러 오는데 같이 게임하려고요. 근데 결국 제가 제일 많이 할 것 같아요"
    for strength in (3, 2):
        found = {s.purpose for s in signals if s.strength == strength}
        if found:
            return Purpose.GIFT if Purpose.GIFT in found else Purpose.SELF
    if not any(s.purpose is Purpose.GIFT for s in signals):
        return Purpose.SELF
    return Purpose.SELF if speaker_turn(text, signals) is not None else Purpose.GIFT


def speaker_turn(text: str, signals: Sequence[Signal]) -> tuple[int, int] | None:
    """With only weak signs of someone else: a person named and then, in the same sentence, the
    speaker naming themselves ("룸메이트가 코를 골아서 제가 잠을 못 자요", "my boss dumps spreadsheets
    on me") tells the speaker's own situation ("I'm his mom", "... I'd say 500k" do not). Returns
    (where the other person is named, where the speaker turns to themselves), or None."""
    others = [s for s in signals if s.purpose is Purpose.GIFT]
    if not others or any(s.strength >= 2 for s in signals):
        return None
    last_other = max(others, key=lambda s: s.position)
    if not last_other.person:
        return None
    for s in signals:
        if s.purpose is not Purpose.SELF or s.position <= last_other.position or \
                any(c in _SENTENCE_BREAKS for c in text[last_other.position:s.position]):
            continue
        # only the speaker named: a need after another person's clause with the subject dropped is
        # as often that person's ("딸이 ... 준비하는데 인강용으로 필요해요") as the speaker's
        if s.speaker:
            return last_other.position, s.position
    return None


class Basis(enum.Enum):
    """How the purpose was decided."""

    NOT_STATED = "not_stated"
    STATED = "stated"  # a gift or own-use phrase ("선물", "제가 쓸", "for me"), someone else named, a correction
    INFERRED = "inferred"  # only the speaker's self-description ("50대", "hiking", "I need"): own use by default


def purpose_basis(text: str, signals: Sequence[Signal], grammar: Mapping[str, Matcher], purpose: Purpose) -> Basis:
    """Whether `purpose` (decide_purpose's answer) was said outright or only inferred. A chat
    that already knows the purpose switches it only on a stated one: a bare "50대" answering a
    question about mom is mom's age, not the speaker buying for themselves."""
    if purpose is Purpose.NOT_STATED:
        return Basis.NOT_STATED
    if purpose is Purpose.GIFT:
        return Basis.STATED
    corrections = grammar["correction"].hits(text)
    if corrections and any(s.position >= corrections[-1].end for s in signals):
        return Basis.STATED  # "actually, I need it myself"
    if any(s.purpose is Purpose.SELF and s.strength >= 2 for s in signals):
        return Basis.STATED  # "제가 쓸", "for me", "나한테 주는 선물"
    return Basis.INFERRED


def decide_gender(purpose: Purpose, people: Sequence[Person]) -> int:
    """1 female, 2 male, 0: the user's gender when the words agree on one."""

    def unique(group: Sequence[Person]) -> int:
        values = {p.gender for p in group}
        return values.pop() if len(values) == 1 else 0

    relatives = [p for p in people if p.mention is Mention.PERSON and p.gender
                 and p.role not in BYSTANDERS]
    words = [p for p in people if p.mention is Mention.WORD and p.role is not Role.ADDRESSEE]
    pronouns = [p for p in people if p.mention is Mention.PRONOUN]
    if purpose is Purpose.GIFT:
        others = [p for p in relatives + words if p.role is not Role.SPEAKER]
        if not others and not any(p.role is Role.RECIPIENT for p in people):
            # "아내가 둘째 낳고 나서 허리가 ... 제가 사주려고요": with no one else, the one described receives
            others = [p for p in people if p.role in (Role.CONTEXT, Role.ADVISOR) and p.gender]
        return unique(others) if others else unique(pronouns)
    if purpose is Purpose.SELF:
        own = [p for p in relatives + words if p.role is Role.SPEAKER or p.copula]
        if own:
            return unique(own)
        return unique(words) if words else 0
    nouns = relatives + words
    return unique(nouns) if nouns else unique(pronouns)


def decide_age(purpose: Purpose, ages: Sequence[AgeMention], markers: SpeakerMarkers) -> int:
    """The user's age: the most precise mention (a stated number, then a decade, then a life
    stage), the first of equals; in a gift the speaker's own age does not count."""
    if purpose is Purpose.GIFT:
        ages = [a for a in ages if not markers.describes(a.start)]
    elif purpose is Purpose.SELF:
        own = [a for a in ages if markers.describes(a.start)]
        ages = own or ages
    if not ages:
        return 0
    return min(ages, key=lambda a: (a.kind, a.start)).years
