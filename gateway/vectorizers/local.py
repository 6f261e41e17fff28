"""The local vectorizer: rule-based Korean/English/mixed text -> the contract's 6-float vector.

No cloud, no model, plain Python: every regular expression is compiled once at import, and a
message costs one pass per rule family (tens of microseconds), minus the scans that
gateway/vectorizers/prefilter.py rules out. The rules are docs/contract.md's
"From text to vector"; the words are in gateway/vectorizers/lexicon.py.

How the slots interact (the part a word list alone cannot do):
- purpose is decided first, because age and gender describe the USER of the product: in a gift,
  what the speaker says about themselves ("I'm 35 and looking for a gift for my dad") is dropped
  and the recipient's words win; for own use, the speaker's words win.
- "actually it's for me" / "사실 제가 쓸 거예요": purpose signals after a correction win.
- interest: a named product type decides; otherwise hobbies/uses score (strong 2, weak 1), the
  best total wins and ties go to the first mentioned; negated mentions ("게임 말고") are dropped.
- budget: the largest amount named (a range's upper end), or the last one after a correction.
- season: the first season word, month or occasion named. Never the clock.

Run `python -m gateway.vectorizers.local --eval tests/data/labelled_messages.jsonl` for the
per-slot accuracy report, or `python -m gateway.vectorizers.local "text"` to vectorize a text.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

from gateway.language import detect_language
from gateway.vectorizers import lexicon as lx
from gateway.vectorizers.base import LOCAL, VectorizeResult
from gateway.vectorizers.prefilter import RulePrefilter
from recommender import schema

# Which rules can match a text; every rule below is registered at import.
_prefilter = RulePrefilter()

_EN_PREFIX, _EN_SUFFIX = "(?<![a-z])(?:", ")(?![a-z])"


def _alternation(fragments, flags=0) -> re.Pattern:
    """One regex for a list of lexicon fragments.

    Longer fragments go first so an alternation prefers "여자친구" over "여자" at the same
    position. Whole-word English fragments (lexicon.en) share ONE boundary check instead of
    one per fragment: the engine then tests the lookbehind once per position, which makes
    the scan several times faster."""
    fragments = set(fragments)
    english = sorted((f[len(_EN_PREFIX):-len(_EN_SUFFIX)] for f in fragments
                      if f.startswith(_EN_PREFIX) and f.endswith(_EN_SUFFIX)), key=len, reverse=True)
    other = sorted((f for f in fragments if not (f.startswith(_EN_PREFIX) and f.endswith(_EN_SUFFIX))),
                   key=len, reverse=True)
    parts = []
    if english:
        parts.append(_EN_PREFIX + "|".join(english) + _EN_SUFFIX)
    if other:
        parts.append("(?:" + "|".join(other) + ")")
    return re.compile("(?:" + "|".join(parts) + ")", flags)


class _Match(NamedTuple):
    start: int
    end: int
    value: int  # a code, an age, an amount...
    kind: str = ""  # rule family detail (tier, "person:speaker"...)


def _longest_non_overlapping(matches: list[_Match]) -> list[_Match]:
    """Keep the longest matches that do not overlap ("만화책" beats "만화"), in text order."""
    taken: list[_Match] = []
    for m in sorted(matches, key=lambda m: (m.start - m.end, m.start)):
        if all(m.end <= t.start or m.start >= t.end for t in taken):
            taken.append(m)
    return sorted(taken, key=lambda m: m.start)


_HANGUL = re.compile(r"[\uac00-\ud7a3\u3130-\u318f]")
_LATIN = re.compile(r"[a-z]")


class _Words:
    """A lexicon list split by script: whole-word Latin fragments in one regex, Korean in
    another, so a text without Hangul (or without Latin letters) skips half the work."""

    def __init__(self, fragments):
        fragments = set(fragments)
        latin, korean = [], []
        for f in fragments:
            wrapped = f.startswith(_EN_PREFIX) and f.endswith(_EN_SUFFIX)
            if wrapped or not _HANGUL.search(f):
                latin.append(f if wrapped else _EN_PREFIX + f + _EN_SUFFIX)
            else:
                korean.append(f)
        self.latin = _alternation(latin) if latin else None
        self.korean = _alternation(korean) if korean else None
        self.latin_bit = _prefilter.register(self.latin) if latin else 0
        self.korean_bit = _prefilter.register(self.korean) if korean else 0

    def finditer(self, text: str, scripts: tuple[bool, bool], possible: int = -1) -> list[re.Match]:
        """Matches, Latin ones first. `scripts` = (has Latin letters, has Hangul); `possible` =
        _prefilter.possible(text), to skip a scan that cannot match (-1: scan all)."""
        found: list[re.Match] = []
        if possible & self.latin_bit and scripts[0]:
            found.extend(self.latin.finditer(text))
        if possible & self.korean_bit and scripts[1]:
            found.extend(self.korean.finditer(text))
        return found


def _scripts(text: str) -> tuple[bool, bool]:
    return bool(_LATIN.search(text)), bool(_HANGUL.search(text))


# --------------------------------------------------------------------------- normalization

_SPACES = re.compile(r"\s+")


def normalize(text: str) -> str:
    """NFKC (full-width digits and ￦ become ASCII/₩), lower case, straight quotes, one space."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    return _SPACES.sub(" ", text).strip()


# --------------------------------------------------------------------------- compiled rules

_INTEREST_RULES: list[tuple[int, str, re.Pattern]] = [
    (code, tier, _Words(words))
    for code, tiers in lx.INTERESTS.items()
    for tier, words in tiers.items()
    if words
]
# The same scans flattened, in the same order (a rule's Latin scan, then its Korean one): the
# order decides which of two equal matches _longest_non_overlapping keeps.
_INTEREST_SCANS: list[tuple[int, str, re.Pattern, int, int]] = [
    (code, tier, rx, bit, script)
    for code, tier, words in _INTEREST_RULES
    for rx, bit, script in ((words.latin, words.latin_bit, 0), (words.korean, words.korean_bit, 1))
    if rx is not None
]
_TIER_WEIGHT = {"product": 3, "strong": 2, "weak": 1}
_INTEREST_NEG_AFTER = re.compile(r"\s?" + _alternation(lx.INTEREST_NEGATION_AFTER).pattern)
_INTEREST_NEG_BEFORE = re.compile(_alternation(lx.INTEREST_NEGATION_BEFORE).pattern + r"\s+$")

_PEOPLE_RULES = [(gender, _Words(words)) for gender, words in lx.PEOPLE.items()]
_GENDER_RULES = [(gender, _Words(words)) for gender, words in lx.GENDER_WORDS.items()]
_PRONOUN_RULES = [(gender, _Words(words)) for gender, words in lx.PRONOUNS.items()]
# Flattened like _INTEREST_SCANS, same order: (family, gender, regex, prefilter bit, script).
_PEOPLE_SCANS: list[tuple[str, int, re.Pattern, int, int]] = [
    (family, gender, rx, bit, script)
    for family, rules in (("person", _PEOPLE_RULES), ("explicit", _GENDER_RULES), ("pronoun", _PRONOUN_RULES))
    for gender, words in rules
    for rx, bit, script in ((words.latin, words.latin_bit, 0), (words.korean, words.korean_bit, 1))
    if rx is not None
]
_WITH_BEFORE = re.compile(_alternation(lx.WITH_PERSON_BEFORE).pattern + r"\s+$")
_WITH_AFTER = re.compile(_alternation(lx.WITH_PERSON_AFTER).pattern)

_SPEAKER = _alternation(lx.SPEAKER_MARKERS)
# What ends a speaker's self-description: a clause break, or words that turn to someone else.
_SPEAKER_BREAK = re.compile(
    r"[.!?;\n]|인데|는데|지만|(?<![a-z])(?:and|but|for|to|who|looking|buying|shopping|want|need|my(?! (?:early|mid|late|\d|twen|thir|fort|fift|sixt|sevent|eight|nint)))(?![a-z])"
    r"|선물|한테|에게|께|위한|쓸|사려|찾"
)
_SPEAKER_WINDOW = 30  # characters between "저는"/"I'm" and the word it describes

_GIFT = _Words(lx.GIFT_WORDS + lx.GIFT_WORDS_EN)
_SELF_GIFT = _Words(lx.SELF_GIFT)
_SELF_STRONG = _Words(lx.SELF_STRONG)
_SELF_WEAK = _Words(lx.SELF_WEAK)
_CORRECTION = _alternation(lx.CORRECTIONS)
_GIFT_NEG_AFTER = re.compile(_alternation(lx.GIFT_NEGATION_AFTER).pattern)
_GIFT_NEG_BEFORE = re.compile(_alternation(lx.GIFT_NEGATION_BEFORE).pattern + r"$")

# ages
_EN_TENS = "|".join(lx.EN_TENS)
_EN_UNITS = "|".join(lx.EN_UNITS)
_EN_TEENS = "|".join(lx.EN_TEENS)
_AGE_DIGITS = re.compile(r"(?<![\d.,])(\d{1,3})\s?(?:살|세)(?!대|트|까|려|게|요일)")
_AGE_KO_NATIVE = re.compile(
    r"(?<![가-힣])(?:(" + "|".join(lx.KO_NATIVE_TENS) + r")\s?)?(" + "|".join(lx.KO_NATIVE_UNITS) + r")?\s?살"
    r"(?!까|려|래|게|지|면|고\s?싶|수\s?있|거)"
)
_AGE_EN = re.compile(
    r"(?<![\d.,])(\d{1,3})\s*-?\s*(?:years?|yrs?|yr)\s*-?\s*olds?(?![a-z])"
    r"|(?<![a-z])aged?\s*(?:is|:|of)?\s*(\d{1,3})(?!\d)"
    r"|(?<![\d.,])(\d{1,3})\s?(?:yo|y/o|y\.o\.)(?![a-z])"
)
_AGE_EN_WORDS = re.compile(
    r"(?<![a-z])(?:(" + _EN_TENS + r")(?:[\s-]?(" + _EN_UNITS + r"))?|(" + _EN_TEENS + r")|(" + _EN_UNITS + r"))"
    r"[\s-]*(?:years?|yrs?)[\s-]*olds?(?![a-z])"
)
_AGE_IS = re.compile(
    r"(?<![a-z])(?:i'm|i am|im|she's|he's|she is|he is|who's|who is|turns|turning|is|was)\s+(\d{1,3})(?![\d,.])"
    r"(?!\s*(?:대|살|세|k|%|won|krw|만|천|원|dollars|percent|thousand|million|minutes?|hours?|days?|weeks?|months?|cm|kg|"
    r"years? (?:of|ago)|items?|pieces?|people|times?|inch)(?![a-z]))"
)
_AGE_BIRTHDAY = re.compile(r"(?<![\d.,])(\d{1,3})\s?(?:st|nd|rd|th)\s+birthday|(?<![\d.,])(\d{1,3})\s?번째\s?생일")
_AGE_MILESTONE = _alternation(w for w, _ in lx.AGE_MILESTONES)
_MILESTONE_AGE = {w: a for w, a in lx.AGE_MILESTONES}
_DECADE_KO = re.compile(r"(?<!\d)([1-9])0\s?대(?:\s?(초반|중반|후반|초|중|후|말))?")
_DECADE_KO_WORDS = re.compile(r"(?<![가-힣])([이삼사오육칠팔구]?)십\s?대(?:\s?(초반|중반|후반|초|중|후|말))?")
_DECADE_EN_WORDS = re.compile(
    r"(?<![a-z])(?:(early|mid|late)[\s-]*)?(" + "|".join(lx.EN_DECADE_WORDS) + r")(?![a-z])"
    r"|(?<![a-z])(" + _EN_TENS + r")[\s-]?something"
    r"|(?<![a-z])(?:(early|mid|late)[\s-]*)?(teen|teenage|teenager|teenagers)(?![a-z])"
)
_DECADE_EN_DIGITS = re.compile(
    r"(?<![\d'])(?:(early|mid|late)[\s-]*)?([1-9]0)'?s(?![a-z])"
    r"(?!\s*(?:music|songs?|style|fashion|movies|films?|era|rock|pop|hits|vibes?|aesthetic|retro|vintage|tv|shows?|kids))"
    r"|(?<![\d'])([1-9]0)[\s-]?something"
)
_LIFE_STAGES = [(re.compile(p), age) for p, age in lx.LIFE_STAGES]
_BUDGET_CONTEXT_NEAR = re.compile(_alternation(lx.BUDGET_CONTEXT).pattern + r"[^\d]{0,12}$")

# money
_NUM = r"\d+(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_AMOUNT_KO_UNIT = re.compile(r"(?<![\d.,])(" + _NUM + r")\s?(억|천만|백만|십만|만|천(?=\s?(?:원|won)))")
_AMOUNT_CURRENCY_AFTER = re.compile(
    r"(?<![\d.,])(" + _NUM + r")\s*(k|thousand|m|mil|million|mn)?\s*(?:원|won|krw)(?![a-z])"
)
_AMOUNT_CURRENCY_BEFORE = re.compile(r"(?:₩|\\|(?<![a-z])krw)\s*(" + _NUM + r")\s*(k|thousand|m|mil|million|mn)?(?![a-z])")
_AMOUNT_SCALED = re.compile(r"(?<![\d.,])(" + _NUM + r")\s*(k|thousand|m|mil|million|mn)(?![a-z])")
_AMOUNT_BARE = re.compile(r"(?<![\d.,])(\d{1,3}(?:,\d{3})+|\d{4,10})(?![\d.,]|\s?(?:년|월|일|시|분|개|명|%))")
_KO_NUMERAL = "[일이삼사오육칠팔구십백천]"
_AMOUNT_KO_WORDS = re.compile(
    r"(?<![가-힣\d])(" + _KO_NUMERAL + r"+)\s?(만|억)(?=\s?(?:원|won)|\s?(?:이하|미만|이내|까지|안쪽|정도|쯤|내외|안팎|선|대)|\s|$|[,.!?~])"
    r"|(?<![가-힣\d])(" + _KO_NUMERAL + r"*천)\s?원"
    r"|(?<![가-힣\d])()(만)\s?원"
)

# seasons
_SEASON_RULES = [(re.compile(p), s) for p, s in lx.SEASON_WORDS]
_MONTH_KO = re.compile(r"(?<![\d.])(1[0-2]|0?[1-9])\s?월(?!\s?(?:급|세|요일|드컵))")
_SEASON_SCANS = [(rx, _prefilter.register(rx), season) for rx, season in _SEASON_RULES]
for _rx in (_AGE_DIGITS, _AGE_EN, _AGE_IS, _AGE_BIRTHDAY, _AGE_MILESTONE, _DECADE_KO, _DECADE_KO_WORDS,
            _DECADE_EN_DIGITS, *(rx for rx, _ in _LIFE_STAGES), _AMOUNT_KO_UNIT, _AMOUNT_KO_WORDS,
            _AMOUNT_CURRENCY_AFTER, _AMOUNT_CURRENCY_BEFORE, _AMOUNT_SCALED, _AMOUNT_BARE, _MONTH_KO):
    _prefilter.register(_rx)  # registered for _prefilter.absent/scan


# --------------------------------------------------------------------------- slot extractors


def _speaker_markers(text: str) -> list[int]:
    return [m.end() for m in _SPEAKER.finditer(text)]


def _is_speaker(text: str, start: int, markers: list[int]) -> bool:
    """A mention belongs to the speaker's self-description: "저는 30대 여성", "I'm a 24-year-old man",
    "in my 60s"."""
    if text[max(0, start - 6):start].endswith("in my "):
        return True
    before = [e for e in markers if e <= start]
    if not before:
        return False
    gap = text[before[-1]:start]
    return len(gap) <= _SPEAKER_WINDOW and not _SPEAKER_BREAK.search(gap)


def _people(text: str, markers: list[int], scripts: tuple[bool, bool],
            possible: int = -1) -> tuple[list[_Match], list[_Match], list[_Match]]:
    """(relational people, explicit gender words, pronouns); kind "speaker" marks self-descriptions."""
    found = []
    for family, gender, rx, bit, script in _PEOPLE_SCANS:
        if not possible & bit or not scripts[script]:
            continue
        for m in rx.finditer(text):
            found.append(_Match(m.start(), m.end(), gender, family))
    people, explicit, pronouns = [], [], []
    for m in _longest_non_overlapping(found):
        tag = ""
        if m.kind != "pronoun" and _is_speaker(text, m.start, markers):
            tag = ":speaker"
        elif m.kind == "person" and (_WITH_BEFORE.search(text[max(0, m.start - 10):m.start])
                                     or _WITH_AFTER.match(text, m.end)):
            tag = ":with"  # "with my wife", "엄마랑 같이": shares the product, is not the recipient
        tagged = _Match(m.start, m.end, m.value, m.kind + tag)
        {"person": people, "explicit": explicit, "pronoun": pronouns}[m.kind].append(tagged)
    return people, explicit, pronouns


def _purpose(text: str, people: list[_Match], scripts: tuple[bool, bool], possible: int = -1) -> int:
    signals: list[tuple[int, int, bool]] = []  # (position, purpose, strong)
    self_gift_spans = [(m.start(), m.end()) for m in _SELF_GIFT.finditer(text, scripts, possible)]
    for s, _ in self_gift_spans:
        signals.append((s, 1, True))
    for m in _GIFT.finditer(text, scripts, possible):
        if any(a <= m.start() < b for a, b in self_gift_spans):
            continue
        if _GIFT_NEG_AFTER.match(text, m.end()) or _GIFT_NEG_BEFORE.search(text[max(0, m.start() - 16):m.start()]):
            continue
        signals.append((m.start(), 2, True))
    for m in _SELF_STRONG.finditer(text, scripts, possible):
        signals.append((m.start(), 1, True))
    for m in _SELF_WEAK.finditer(text, scripts, possible):
        signals.append((m.start(), 1, False))
    for p in people:
        if p.kind.endswith(":speaker"):
            signals.append((p.start, 1, False))  # "저는 엄마인데", "I'm a dad"
            continue
        if p.kind.endswith(":with"):
            continue
        signals.append((p.start, 2, False))
    if not signals:
        return 0
    corrections = [m.end() for m in _CORRECTION.finditer(text)]
    if corrections:
        after = sorted(s for s in signals if s[0] >= corrections[-1])
        strong_after = [s for s in after if s[2]]
        if strong_after or after:
            return (strong_after or after)[0][1]
    strong = {p for _, p, is_strong in signals if is_strong}
    if 2 in strong:
        return 2
    if 1 in strong:
        return 1
    weak = {p for _, p, _ in signals}
    return 2 if 2 in weak else 1


def _speaker_extra(explicit: list[_Match], ages: list[_Match]) -> bool:
    """The speaker describes themselves ("저는 30대 여성인데", "I'm 30"): own use, if nothing else says."""
    return any(m.kind.endswith(":speaker") for m in explicit + ages)


def _gender(purpose: int, people, explicit, pronouns) -> int:
    def unique(ms) -> int:
        values = {m.value for m in ms}
        return values.pop() if len(values) == 1 else 0

    def speaker(ms):
        return [m for m in ms if m.kind.endswith(":speaker")]

    def others(ms):
        return [m for m in ms if not m.kind.endswith(":speaker")]

    gendered_people = [p for p in people if p.value and not p.kind.endswith(":with")]
    if purpose == 2:
        nouns = others(gendered_people) + others(explicit)
        if nouns:
            return unique(nouns)
        return unique(pronouns)
    if purpose == 1:
        own = speaker(gendered_people) + speaker(explicit)
        if own:
            return unique(own)
        if explicit:
            return unique(explicit)
        return 0
    nouns = gendered_people + explicit
    if nouns:
        return unique(nouns)
    return unique(pronouns)


def _near_budget_words(text: str, start: int) -> bool:
    return bool(_BUDGET_CONTEXT_NEAR.search(text[max(0, start - 28):start]))


def _ages(text: str, markers: list[int], possible: int = -1) -> list[_Match]:
    """Every age mention: kind "0" stated number/milestone, "1" decade, "2" life stage."""
    present = possible
    found: list[_Match] = []

    def add(start, end, value, tier):
        if 1 <= value <= schema.MAX_AGE:
            found.append(_Match(start, end, int(value), tier))

    for m in _prefilter.scan(_AGE_DIGITS, present, text):
        add(m.start(), m.end(), int(m.group(1)), "0")
    for m in _AGE_KO_NATIVE.finditer(text) if "살" in text else ():  # every match ends in 살
        tens, units = m.group(1), m.group(2)
        if tens or units:
            add(m.start(), m.end(), lx.KO_NATIVE_TENS.get(tens, 0) + lx.KO_NATIVE_UNITS.get(units, 0), "0")
    for m in _prefilter.scan(_AGE_EN, present, text):
        add(m.start(), m.end(), int(next(g for g in m.groups() if g)), "0")
    for m in _AGE_EN_WORDS.finditer(text) if "old" in text else ():  # every match holds "old"
        tens, unit, teen, single = m.groups()
        value = (lx.EN_TENS.get(tens, 0) + lx.EN_UNITS.get(unit, 0)) if tens else (
            lx.EN_TEENS[teen] if teen else lx.EN_UNITS[single])
        add(m.start(), m.end(), value, "0")
    for m in _prefilter.scan(_AGE_IS, present, text):
        if not _near_budget_words(text, m.start()):
            add(m.start(1), m.end(), int(m.group(1)), "0")
    for m in _prefilter.scan(_AGE_BIRTHDAY, present, text):
        add(m.start(), m.end(), int(m.group(1) or m.group(2)), "0")
    for m in _prefilter.scan(_AGE_MILESTONE, present, text):
        add(m.start(), m.end(), _MILESTONE_AGE[m.group(0)], "0")
    for m in _prefilter.scan(_DECADE_KO, present, text):
        add(m.start(), m.end(), int(m.group(1)) * 10 + lx.DECADE_OFFSETS[m.group(2)], "1")
    for m in _prefilter.scan(_DECADE_KO_WORDS, present, text):
        tens = lx.KO_DIGITS.get(m.group(1), 1) * 10
        add(m.start(), m.end(), tens + lx.DECADE_OFFSETS[m.group(2)], "1")
    # every match holds a decade word (all end in "ies" but "teens"), "teen" or "something"
    decade_words = "ies" in text or "teen" in text or "something" in text
    for m in _DECADE_EN_WORDS.finditer(text) if decade_words else ():
        mod, word, something, teen_mod, teen = m.groups()
        if word:
            if text[max(0, m.start() - 4):m.start()] == "the ":
                continue  # "the nineties" is an era, not an age
            add(m.start(), m.end(), lx.EN_DECADE_WORDS[word] + lx.DECADE_OFFSETS[mod], "1")
        elif something:
            add(m.start(), m.end(), lx.EN_TENS[something] + 5, "1")
        elif teen:
            add(m.start(), m.end(), 10 + lx.DECADE_OFFSETS[teen_mod], "1")
    for m in _prefilter.scan(_DECADE_EN_DIGITS, present, text):
        mod, digits, something = m.groups()
        before = text[max(0, m.start() - 4):m.start()]
        if digits:
            if before.endswith(("the ", "19", "20")):
                continue
            add(m.start(), m.end(), int(digits) + lx.DECADE_OFFSETS[mod], "1")
        else:
            add(m.start(), m.end(), int(something) + 5, "1")
    for rx, age in _LIFE_STAGES:
        if _prefilter.absent(rx, present, text):
            continue
        for m in rx.finditer(text):
            add(m.start(), m.end(), age, "2")
    result = []
    for m in _longest_non_overlapping(found):
        speaker = _is_speaker(text, m.start, markers)
        result.append(_Match(m.start, m.end, m.value, m.kind + (":speaker" if speaker else "")))
    return result


def _age(purpose: int, ages: list[_Match]) -> int:
    if purpose == 2:
        ages = [a for a in ages if not a.kind.endswith(":speaker")]
    elif purpose == 1:
        own = [a for a in ages if a.kind.endswith(":speaker")]
        ages = own or ages
    if not ages:
        return 0
    return min(ages, key=lambda a: (a.kind[0], a.start)).value


def _to_number(digits: str) -> float:
    return float(digits.replace(",", ""))


def _ko_numeral(word: str) -> int:
    """Sino-Korean numerals below 10,000: "오십" 50, "백오십" 150, "삼천" 3000, "십" 10."""
    total, digit = 0, 0
    for ch in word:
        if ch in lx.KO_DIGITS:
            digit = lx.KO_DIGITS[ch]
        else:
            total += (digit or 1) * lx.KO_SMALL_UNITS[ch]
            digit = 0
    return total + digit


def _budget(text: str, possible: int = -1) -> int:
    present = possible
    amounts: list[tuple[int, float]] = []
    spans: list[tuple[int, int]] = []

    def add(m, value):
        if any(a < m.end() and m.start() < b for a, b in spans):
            return
        spans.append((m.start(), m.end()))
        amounts.append((m.start(), value))

    for m in _prefilter.scan(_AMOUNT_KO_UNIT, present, text):
        add(m, _to_number(m.group(1)) * lx.AMOUNT_UNITS[m.group(2)])
    for m in _prefilter.scan(_AMOUNT_KO_WORDS, present, text):
        if m.group(2):  # ...만 / ...억
            add(m, _ko_numeral(m.group(1)) * lx.KO_BIG_UNITS[m.group(2)])
        elif m.group(3):  # ...천원
            add(m, _ko_numeral(m.group(3)))
        else:  # 만원
            add(m, 10_000)
    for rx in (_AMOUNT_CURRENCY_AFTER, _AMOUNT_CURRENCY_BEFORE):
        for m in _prefilter.scan(rx, present, text):
            add(m, _to_number(m.group(1)) * lx.AMOUNT_UNITS.get(m.group(2), 1))
    for m in _prefilter.scan(_AMOUNT_SCALED, present, text):
        if _near_budget_words(text, m.start()):
            add(m, _to_number(m.group(1)) * lx.AMOUNT_UNITS[m.group(2)])
    for m in _prefilter.scan(_AMOUNT_BARE, present, text):
        if _near_budget_words(text, m.start()):
            add(m, _to_number(m.group(1)))
    if not amounts:
        return 0
    corrections = [m.end() for m in _CORRECTION.finditer(text)]
    after = [v for pos, v in amounts if corrections and pos >= corrections[-1]]
    value = after[-1] if after else max(v for _, v in amounts)
    value = round(value)
    return value if 0 < value <= schema.MAX_BUDGET_KRW else 0


def _interest(text: str, scripts: tuple[bool, bool], possible: int = -1) -> int:
    found = []
    for code, tier, rx, bit, script in _INTEREST_SCANS:
        if not possible & bit or not scripts[script]:
            continue
        for m in rx.finditer(text):
            found.append(_Match(m.start(), m.end(), code, tier))
    kept = []
    for m in _longest_non_overlapping(found):
        if _INTEREST_NEG_AFTER.match(text, m.end):
            continue
        if _INTEREST_NEG_BEFORE.search(text[max(0, m.start - 30):m.start]):
            continue
        kept.append(m)
    if not kept:
        return 0
    products = [m for m in kept if m.kind == "product"]
    candidates = products or kept
    scores: dict[int, int] = {}
    first: dict[int, int] = {}
    for m in candidates:
        scores[m.value] = scores.get(m.value, 0) + _TIER_WEIGHT[m.kind]
        first.setdefault(m.value, m.start)
    return max(scores, key=lambda code: (scores[code], -first[code]))


def _season(text: str, possible: int = -1) -> int:
    present = possible
    best: tuple[int, int] | None = None  # (position, season)
    for rx, bit, season in _SEASON_SCANS:
        if not possible & bit:
            continue
        m = rx.search(text)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), season)
    m = None if _prefilter.absent(_MONTH_KO, present, text) else _MONTH_KO.search(text)
    if m and (best is None or m.start() < best[0]):
        best = (m.start(), lx.MONTH_SEASON[int(m.group(1))])
    return best[1] if best else 0


# --------------------------------------------------------------------------- public API


def extract_features(text: str) -> tuple[float, ...]:
    """The contract vector of a text (any text: nothing stated gives all zeros)."""
    norm = normalize(text)
    scripts = _scripts(norm)
    present = _prefilter.possible(norm)
    markers = _speaker_markers(norm)
    people, explicit, pronouns = _people(norm, markers, scripts, present)
    ages = _ages(norm, markers, present)
    purpose = _purpose(norm, people, scripts, present)
    if purpose == 0 and _speaker_extra(explicit, ages):
        purpose = 1
    vector = (
        _age(purpose, ages),
        _gender(purpose, people, explicit, pronouns),
        _budget(norm, present),
        _interest(norm, scripts, present),
        purpose,
        _season(norm, present),
    )
    return _validated(vector)


_VALIDATED: dict[tuple, tuple[float, ...]] = {}
_VALIDATED_MAX = 4096  # distinct vectors remembered; messages repeat far fewer combinations


def _validated(vector: tuple) -> tuple[float, ...]:
    """schema.validate_features, remembered per vector: the answer depends on the values only,
    and the full check (building its error texts' inputs) costs more than a dict lookup."""
    done = _VALIDATED.get(vector)
    if done is None:
        done = schema.validate_features(vector)
        if len(_VALIDATED) >= _VALIDATED_MAX:
            _VALIDATED.clear()
        _VALIDATED[vector] = done
    return done


class LocalVectorizer:
    """Rule-based vectorizer: no network, no credentials, never unavailable."""

    name = LOCAL

    def vectorize(self, text: str) -> VectorizeResult:
        return VectorizeResult(features=extract_features(text), vectorizer=LOCAL, language=detect_language(text))


# --------------------------------------------------------------------------- evaluation CLI


def evaluate(path: str) -> dict:
    """Per-slot and exact-match accuracy of the local vectorizer on a labelled JSONL file,
    plus mean microseconds per message and the misses."""
    import json
    import time

    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    vectorizer = LocalVectorizer()
    for row in rows[:20]:  # warm-up
        vectorizer.vectorize(row["text"])
    correct = [0] * schema.FEATURE_COUNT
    exact = 0
    misses = []
    started = time.perf_counter()
    predictions = [vectorizer.vectorize(row["text"]).features for row in rows]
    elapsed = time.perf_counter() - started
    for row, got in zip(rows, predictions, strict=True):
        want = tuple(float(v) for v in row["features"])
        hits = [g == w for g, w in zip(got, want, strict=True)]
        for i, hit in enumerate(hits):
            correct[i] += hit
        exact += all(hits)
        if not all(hits):
            misses.append({"text": row["text"], "want": want, "got": got,
                           "slots": [schema.SLOT_NAMES[i] for i, h in enumerate(hits) if not h]})
    n = len(rows)
    return {
        "messages": n,
        "per_slot": {name: correct[i] / n for i, name in enumerate(schema.SLOT_NAMES)},
        "exact": exact / n,
        "us_per_message": elapsed / n * 1e6,
        "misses": misses,
    }


def format_report(report: dict) -> str:
    lines = [f"local vectorizer on {report['messages']} labelled messages"]
    lines.append(f"{'slot':<10}{'accuracy':>10}")
    for name, acc in report["per_slot"].items():
        lines.append(f"{name:<10}{acc:>10.1%}")
    lines.append(f"{'exact':<10}{report['exact']:>10.1%}")
    lines.append(f"mean {report['us_per_message']:.1f} µs/message")
    for miss in report["misses"]:
        lines.append(f"MISS {miss['slots']}: {miss['text']!r} want={miss['want']} got={miss['got']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m gateway.vectorizers.local", description=__doc__.split("\n")[0])
    parser.add_argument("--eval", metavar="JSONL", help="report per-slot accuracy on a labelled set")
    parser.add_argument("text", nargs="*", help="texts to vectorize")
    args = parser.parse_args(argv)
    if args.eval:
        print(format_report(evaluate(args.eval)))
    for text in args.text:
        result = LocalVectorizer().vectorize(schema.validate_text(text))
        named = ", ".join(f"{n}={v:g}" for n, v in zip(schema.SLOT_NAMES, result.features, strict=True))
        print(f"[{result.language}] {named}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
