"""Numbers in customer text: digits, Korean native and Sino-Korean numerals, English number words,
and what they measure (ages, amounts of money, months).

Grammar, not vocabulary: the closed classes of numerals and units live here; the open word lists
the rules consult (budget words, words that introduce an age...) come from the phrase tables'
[grammar] section.

Every number is bounded BEFORE it is converted: a digit run longer than MAX_DIGITS, a numeral
word longer than MAX_NUMERAL_CHARS or an English number phrase of more than MAX_NUMBER_WORDS words
is not a quantity any slot can hold, so it is skipped (never turned into a float that overflows).
Values outside the contract's ranges (an age above 100, an amount above 1e9 won) are dropped
mention by mention: the slot then comes from the other mentions, or is 0 (not stated).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import NamedTuple

from gateway.vectorizers.local.tables import Matcher
from recommender import schema

MAX_DIGITS = 12  # integer digits; 1e9 won (the largest budget) has 10
MAX_FRACTION_DIGITS = 6
MAX_NUMERAL_CHARS = 12
MAX_NUMBER_WORDS = 10


class Token(NamedTuple):
    start: int
    end: int
    value: float  # already bounded
    kind: str  # "digits", "sino", "native", "english"


class AgeKind(enum.IntEnum):
    """How an age was said; a lower kind is more precise and wins."""

    STATED = 0  # 25살, aged 25, I'm 31, 칠순
    DECADE = 1  # 30대, early thirties
    STAGE = 2  # 고등학생, college student


class AgeMention(NamedTuple):
    start: int
    end: int
    years: int
    kind: AgeKind


class Amount(NamedTuple):
    start: int
    end: int
    won: int


def _is_hangul(ch: str) -> bool:
    return "\uac00" <= ch <= "\ud7a3"


def _is_latin(ch: str) -> bool:
    return "a" <= ch <= "z"


# --------------------------------------------------------------------------- numerals

_DIGITS = re.compile(r"\d[\d,]*(?:\.\d+)?")
_ANY_HANGUL = re.compile("[\uac00-\ud7a3]")
_ANY_LATIN = re.compile("[a-z]")
_SINO_NEEDED = re.compile("[원만억세살대월]")


def digits_value(raw: str) -> float | None:
    """'300,000' -> 300000.0, '1.5' -> 1.5; None when the integer part has more than MAX_DIGITS
    digits (bounded before any conversion)."""
    whole, _, fraction = raw.rstrip(",").partition(".")
    whole = whole.replace(",", "")
    if not whole or len(whole.lstrip("0")) > MAX_DIGITS:
        return None
    if fraction:
        return float(f"{int(whole)}.{fraction[:MAX_FRACTION_DIGITS]}")
    return float(int(whole))


SINO_DIGITS = {"일": 1, "이": 2, "삼": 3, "사": 4, "오": 5, "육": 6, "칠": 7, "팔": 8, "구": 9}
SINO_SMALL = {"십": 10, "백": 100, "천": 1000}
SINO_BIG = {"만": 10_000, "억": 100_000_000}
_SINO = re.compile("[" + "".join([*SINO_DIGITS, *SINO_SMALL, *SINO_BIG]) + "]+")


def sino_value(word: str) -> int | None:
    """Sino-Korean numerals: 오십 50, 삼백오십만 3,500,000, 천오백 1500, 만 10,000. None for a
    run that is no numeral (two digits in a row, "사이"), or longer than MAX_NUMERAL_CHARS."""
    if len(word) > MAX_NUMERAL_CHARS:
        return None
    total = section = 0
    digit = None
    last_small = 10_000
    for ch in word:
        if ch in SINO_DIGITS:
            if digit is not None:
                if SINO_DIGITS[ch] != digit + 1:
                    return None
                # "삼사십만 원", "이삼십": a range of neighbours, read as its upper end
            digit = SINO_DIGITS[ch]
        elif ch in SINO_SMALL:
            unit = SINO_SMALL[ch]
            if unit >= last_small:
                return None
            section += (digit or 1) * unit
            last_small, digit = unit, None
        else:
            total += (section + (digit or 0) or 1) * SINO_BIG[ch]
            section, digit, last_small = 0, None, 10_000
    return total + section + (digit or 0)


NATIVE_TENS = {"열": 10, "스물": 20, "스무": 20, "서른": 30, "마흔": 40, "쉰": 50, "예순": 60, "일흔": 70, "여든": 80,
               "아흔": 90}
NATIVE_UNITS = {"하나": 1, "한": 1, "둘": 2, "두": 2, "셋": 3, "세": 3, "넷": 4, "네": 4, "다섯": 5, "여섯": 6, "일곱": 7,
                "여덟": 8, "아홉": 9}
_NATIVE_TENS_RX = "(" + "|".join(sorted(NATIVE_TENS, key=len, reverse=True)) + ")"
_NATIVE_UNITS_RX = "(" + "|".join(sorted(NATIVE_UNITS, key=len, reverse=True)) + ")"
_NATIVE = re.compile(f"{_NATIVE_TENS_RX}\\s?{_NATIVE_UNITS_RX}?|{_NATIVE_UNITS_RX}")
# Tens that stand alone as an age without 살 ("서른이에요", "마흔 넘었어요"); 열 and 쉰 are also
# ordinary words (열다 "open", 쉰 "hoarse").
_BARE_NATIVE_TENS = frozenset({"스물", "서른", "마흔", "예순", "일흔", "여든", "아흔"})
_SWIN_AS_AGE = ("이 되", "이 넘", "이에요", "이세요", "이신", "입니다", "이야", "이 다 되", "을 넘", "넘")

EN_UNITS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
            "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
            "seventeen": 17, "eighteen": 18, "nineteen": 19}
EN_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
           "ninety": 90}
EN_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000}
_EN_WORD = "|".join(sorted([*EN_UNITS, *EN_TENS, *EN_SCALES], key=len, reverse=True))
_ENGLISH = re.compile(rf"(?:{_EN_WORD})(?:[\s-]+(?:and[\s-]+)?(?:{_EN_WORD}))*")


EN_FRACTIONS = {"half": 0.5, "quarter": 0.25}
# "half a million", "a quarter of a million": a fraction of a scale word
_EN_FRACTION = re.compile(r"(?:a\s+)?(half|quarter)(?:[\s-]+of)?(?:[\s-]+an?)?[\s-]+(thousand|million|billion)")
# "one and a half million", "two and a half thousand"
_EN_AND_A_HALF = re.compile(r"(one|two|three|four|five|six|seven|eight|nine|\d+)\s+and\s+a\s+half\s+(thousand|million|billion)")


def english_value(phrase: str) -> int | None:
    """'thirty-six' 36, 'fifty two' 52, 'three hundred thousand' 300,000; None beyond
    MAX_NUMBER_WORDS words or for a sequence that is no number ("five two")."""
    words = [w for w in re.split(r"[\s-]+", phrase) if w and w != "and"]
    if len(words) > MAX_NUMBER_WORDS:
        return None
    total = current = 0
    last = None  # "unit", "ten", "scale"
    big_scale = None  # the last thousand/million/billion
    for word in words:
        if word in EN_UNITS:
            if last == "unit" or (last == "ten" and EN_UNITS[word] >= 10):
                return None
            current += EN_UNITS[word]
            last = "unit"
        elif word in EN_TENS:
            if last in ("unit", "ten"):
                return None
            current += EN_TENS[word]
            last = "ten"
        else:
            scale = EN_SCALES[word]
            if scale == 100:
                current = (current or 1) * 100
            else:
                if big_scale is not None and scale >= big_scale:
                    return None  # "one hundred thousand and three hundred thousand": two numbers
                big_scale = scale
                total += (current or 1) * scale
                current = 0
            last = "scale"
    return total + current


def tokens(text: str) -> list[Token]:
    """Every number in the text, in order, without overlaps (digits first, then numeral words)."""
    found: list[Token] = []
    digit_ends = set()
    for m in _DIGITS.finditer(text):
        raw = m.group().rstrip(",")
        digit_ends.update((m.start() + len(raw), m.start() + len(raw) + 1))
        value = digits_value(raw)
        if value is not None:
            found.append(Token(m.start(), m.start() + len(raw), value, "digits"))
    taken = [(t.start, t.end) for t in found]
    if _ANY_HANGUL.search(text):
        # a Sino-Korean numeral only counts before a unit (원 만 억 세 살 대 월) and contains
        # one of these characters: no scan for texts without them
        for m in _SINO.finditer(text) if _SINO_NEEDED.search(text) else ():
            s, e = m.span()
            if s and (_is_hangul(text[s - 1]) or text[s - 1].isdigit() or _is_latin(text[s - 1])):
                continue  # inside a word (구매, 사이), a unit after digits (30만), a particle ("excel이랑", "ppt만")
            value = sino_value(m.group())
            if value is not None:
                found.append(Token(s, e, float(value), "sino"))
        for m in _NATIVE.finditer(text):
            tens, units = m.group(1), m.group(2) or m.group(3)
            if m.start() and _is_hangul(text[m.start() - 1]):
                continue
            value = NATIVE_TENS.get(tens, 0) + NATIVE_UNITS.get(units, 0)
            end = m.end()
            if not any(s < end and m.start() < e for s, e in taken):
                found.append(Token(m.start(), end, float(value), "native:" + (tens or "")))
    for m in _EN_AND_A_HALF.finditer(text) if "and a half" in text else ():
        whole = float(m.group(1)) if m.group(1).isdigit() else EN_UNITS[m.group(1)]
        found.append(Token(m.start(), m.end(), (whole + 0.5) * EN_SCALES[m.group(2)], "english"))
    for m in _EN_FRACTION.finditer(text) if "half" in text or "quarter" in text else ():
        if not (m.start() and _is_latin(text[m.start() - 1])) and _latin_end(text, m.end()):
            found.append(Token(m.start(), m.end(), EN_FRACTIONS[m.group(1)] * EN_SCALES[m.group(2)], "english"))
    for m in _ENGLISH.finditer(text) if _ANY_LATIN.search(text) else ():
        s, e = m.span()
        if (s and _is_latin(text[s - 1])) or (e < len(text) and _is_latin(text[e])):
            continue
        if s in digit_ends:
            continue  # "5 million": the digits' scale word, not a number of its own
        value = english_value(m.group())
        if value is not None:
            found.append(Token(s, e, float(value), "english"))
            continue
        offset = s  # "between fifty and eighty thousand": two numbers joined by "and"
        for part in re.split(r"([\s-]+and[\s-]+)", m.group()):
            part_value = english_value(part) if not part.strip(" -").startswith("and") else None
            if part_value is not None:
                found.append(Token(offset, offset + len(part), float(part_value), "english"))
            offset += len(part)
    found.sort(key=lambda t: (t.start, t.start - t.end))
    result: list[Token] = []
    for token in found:
        if not result or token.start >= result[-1].end:
            result.append(token)
    return result


# --------------------------------------------------------------------------- money

KO_UNITS = {"억": 100_000_000, "천만": 10_000_000, "백만": 1_000_000, "십만": 100_000, "만": 10_000, "마넌": 10_000,
            "천": 1000}
EN_MONEY_SCALES = {"k": 1000, "thousand": 1000, "m": 1_000_000, "mil": 1_000_000, "million": 1_000_000,
                   "mn": 1_000_000, "billion": 1_000_000_000}
_KO_UNIT = re.compile(r"\s?(억|천만|백만|십만|마넌|만|천)")  # 마넌: chat spelling of 만원
_EN_SCALE = re.compile(r"\s?(thousand|million|billion|mil|mn|k|m)")
_CURRENCY_AFTER = re.compile(r"\s?(원|won|krw)")
_CURRENCY_BEFORE = ("₩", "krw", "\\")
_NOT_AMOUNT_AFTER = ("년", "월", "일", "시", "분", "개", "명", "%", "번", "살", "세", "대", "위", "등", "층", "호", "학년", "kg",
                     "cm")


def _latin_end(text: str, pos: int) -> bool:
    return pos >= len(text) or not _is_latin(text[pos])


def _near(text: str, start: int, words: Matcher, reach: int = 28, gap: int = 12) -> bool:
    """A word of `words` ends shortly before `start`, with no number in between."""
    window_start = max(0, start - reach)
    hit = None
    for hit_ in words.hits(text[window_start:start]):
        hit = hit_
    if hit is None:
        return False
    between = text[window_start + hit.end:start]
    return len(between) <= gap and not any(c.isdigit() for c in between)


def find_amounts(text: str, grammar: Mapping[str, Matcher], numbers: list[Token] | None = None) -> list[Amount]:
    """Every amount of money named, in won, bounded to the contract (1..1e9)."""
    numbers = tokens(text) if numbers is None else numbers
    amounts: list[Amount] = []
    context = grammar["budget_context"]
    i = 0
    while i < len(numbers):
        token = numbers[i]
        i += 1
        value, end = token.value, token.end
        won: float | None = None
        unit = _KO_UNIT.match(text, end)
        if unit and (unit.group(1) != "천" or _CURRENCY_AFTER.match(text, unit.end())):
            # 30만, 3백만원, 1억 5천만원, 3만5천원: a chain of falling units adds up
            won, end, last = value * KO_UNITS[unit.group(1)], unit.end(), KO_UNITS[unit.group(1)]
            while i < len(numbers) and numbers[i].start - end <= 1:
                nxt = _KO_UNIT.match(text, numbers[i].end)
                if not nxt and numbers[i].value < last and _CURRENCY_AFTER.match(text, numbers[i].end):
                    won += numbers[i].value  # "칠만 오천 원": the last part is a number of won
                    end = numbers[i].end
                    i += 1
                    break
                if not nxt or KO_UNITS[nxt.group(1)] >= last:
                    break
                won += numbers[i].value * KO_UNITS[nxt.group(1)]
                end, last = nxt.end(), KO_UNITS[nxt.group(1)]
                i += 1
            currency = _CURRENCY_AFTER.match(text, end)
            end = currency.end() if currency else end
        elif token.kind == "sino":
            if (i < len(numbers) and token.value >= 10_000 and numbers[i].kind == "sino" and numbers[i].start - end == 1
                    and numbers[i].value < 10_000 and _CURRENCY_AFTER.match(text, numbers[i].end)):
                value, end = value + numbers[i].value, numbers[i].end  # "칠만 오천 원"
                i += 1
            if _CURRENCY_AFTER.match(text, end) and (value >= 1000 or "만" in text[token.start:end]):
                won, end = value, _CURRENCY_AFTER.match(text, end).end()
            elif token.value >= 10_000 and end - token.start > 1 and (end >= len(text) or not _is_hangul(text[end])
                                            or text.startswith(("이하", "미만", "이내", "까지", "안쪽", "정도", "쯤", "내외",
                                                                "안팎", "선", "대"), end)):
                won = value
        else:
            scale = _EN_SCALE.match(text, end)
            if scale and _latin_end(text, scale.end()) and token.kind in ("digits", "english"):
                scaled, after_scale = value * EN_MONEY_SCALES[scale.group(1)], scale.end()
                currency = _CURRENCY_AFTER.match(text, after_scale)
                if currency and _latin_end(text, currency.end()):
                    won, end = scaled, currency.end()
                elif _near(text, token.start, context) or text[max(0, token.start - 4):token.start].rstrip().endswith(
                        _CURRENCY_BEFORE):
                    won, end = scaled, after_scale
            if won is None:
                currency = _CURRENCY_AFTER.match(text, end)
                before = text[max(0, token.start - 4):token.start].rstrip()
                if currency and _latin_end(text, currency.end()):
                    won, end = value, currency.end()
                elif before.endswith(_CURRENCY_BEFORE):
                    won = value
                elif token.kind in ("digits", "english") and (value >= 1000) and _near(text, token.start, context):
                    if not text[end:].lstrip().startswith(_NOT_AMOUNT_AFTER):
                        won = value
        if won is None:
            continue
        won = round(won)
        if 0 < won <= schema.MAX_BUDGET_KRW:
            amounts.append(Amount(token.start, end, won))
    return amounts


# --------------------------------------------------------------------------- ages

DECADE_OFFSETS = {"초반": 2, "초": 2, "중반": 5, "중": 5, "후반": 8, "후": 8, "말": 8, "early": 2, "mid": 5, "late": 8}
_KO_DECADE = re.compile(r"\s?대(?:\s?(초반|중반|후반|초|중|후|말))?")
_KO_AGE_UNIT = re.compile(r"\s?(살|세)")
# 살 is also "buy" (살까, 살려고) and "live" (살아요); 세 also starts 세대, 세트
_NOT_AGE_AFTER_UNIT = {"살": tuple("까려래게지면거건때만고수자아았"), "세": ("대", "트", "요", "일")}  # 사세요: they live
# ... and with a space before the verb's ending or object: "하나 살 거예요", "뭐 살 수 있", "두 개 살 생각"
_BUY_AFTER_SPACE = ("거", "건", "게", "수 ", "수있", "생각", "예정", "계획", "만한", "물건", "제품", "때")
_EN_YEARS_OLD = re.compile(r"[\s-]*(?:years?|yrs?|yr)[\s-]*olds?|\s?(?:yo|y/o|y\.o\.)")
_EN_DECADE_DIGITS = re.compile(r"'?s")
_EN_SOMETHING = re.compile(r"[\s-]?something")
_EN_MODIFIER = re.compile(r"(early|mid|late)[\s-]*$")
EN_DECADE_WORDS = {"teens": 10, "twenties": 20, "thirties": 30, "forties": 40, "fifties": 50, "sixties": 60,
                   "seventies": 70, "eighties": 80, "nineties": 90}
_EN_DECADE_WORD = re.compile("(?:(early|mid|late)[\\s-]*)?(" + "|".join(EN_DECADE_WORDS) + "|teenagers?|teenage|teen)")
_ORDINAL = re.compile(r"(?:st|nd|rd|th)")
_EN_YEARS = re.compile(r"[\s-]+(?:years?|yrs?)")
_BIRTHDAY = re.compile(r"\s?(?:st|nd|rd|th)\s+birthday|\s?번째\s?생일")
EN_ORDINALS = {"twentieth": 20, "thirtieth": 30, "fortieth": 40, "fiftieth": 50, "sixtieth": 60, "seventieth": 70,
               "eightieth": 80, "ninetieth": 90, "hundredth": 100}
_EN_ORDINAL_TEENS = {"tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14, "fifteenth": 15,
                     "sixteenth": 16, "seventeenth": 17, "eighteenth": 18, "nineteenth": 19}
_EN_ORDINAL_UNITS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
                     "ninth": 9}
_SIMPLE_ORDINALS = {**EN_ORDINALS, **_EN_ORDINAL_TEENS}
# "eighty-second birthday", "her fifteenth birthday", "my wife's fiftieth"
_EN_ORDINAL_AGE = re.compile("(?:(" + "|".join(EN_TENS) + r")[\s-](" + "|".join(_EN_ORDINAL_UNITS) + ")|("
                             + "|".join(_SIMPLE_ORDINALS) + "))(?![a-z])")
_KO_AGE_FOLLOWERS = ("이", "인", "입", "살", "세", "넘", "쯤", "정도", "초반", "중반", "후반", "줄", "되", "이세요", "이신")


def _years(value: float) -> int | None:
    years = int(value) if value == int(value) else None
    return years if years is not None and 1 <= years <= schema.MAX_AGE else None


def find_ages(text: str, grammar: Mapping[str, Matcher], numbers: list[Token] | None = None) -> list[AgeMention]:
    """Every age said with a number (stated ages, decades, birthdays), in text order."""
    numbers = tokens(text) if numbers is None else numbers
    found: list[AgeMention] = []

    def add(start: int, end: int, value: float, kind: AgeKind) -> None:
        years = _years(value)
        if years is not None:
            found.append(AgeMention(start, end, years, kind))

    for token in numbers:
        start, end, value = token.start, token.end, token.value
        unit = _KO_AGE_UNIT.match(text, end)
        if unit and unit.group(1) == "살" and text[unit.end():unit.end() + 1] == " " and \
                text.startswith(_BUY_AFTER_SPACE, unit.end() + 1):
            unit = None  # "하나 살 거예요": buy one
        if unit and not text.startswith(_NOT_AGE_AFTER_UNIT[unit.group(1)], unit.end()):
            if token.kind != "sino" or unit.group(1) == "세" or value >= 10:
                add(start, unit.end(), value, AgeKind.STATED)
            continue
        decade = _KO_DECADE.match(text, end)
        if decade and value in (10, 20, 30, 40, 50, 60, 70, 80, 90) and token.kind in ("digits", "sino"):
            add(start, decade.end(), value + DECADE_OFFSETS.get(decade.group(1), 5), AgeKind.DECADE)
            continue
        if token.kind.startswith("native:"):
            tens = token.kind.partition(":")[2]
            after = text[end:].lstrip()
            units = value % 10
            if (units and tens in NATIVE_TENS and (tens != "열" or after.startswith(_KO_AGE_FOLLOWERS))) or (
                    tens in _BARE_NATIVE_TENS and (not after or not _is_hangul(after[0]) or after.startswith(_KO_AGE_FOLLOWERS))) or (
                    tens == "쉰" and after.startswith(_SWIN_AS_AGE)):
                add(start, end, value, AgeKind.STATED)
            continue
        old = _EN_YEARS_OLD.match(text, end)
        if old and _latin_end(text, old.end()):
            add(start, old.end(), value, AgeKind.STATED)
            continue
        birthday = _BIRTHDAY.match(text, end)
        if birthday:
            add(start, birthday.end(), value, AgeKind.STATED)
            continue
        ordinal = _ORDINAL.match(text, end) if token.kind == "digits" else None
        if ordinal and text[max(0, start - 3):start] == "'s " and _latin_end(text, ordinal.end()):
            add(start, ordinal.end(), value, AgeKind.STATED)  # "my dad's 50th is coming up"
            continue
        if token.kind in ("digits", "english") and text[max(0, start - 3):start] == "of " and (
                years := _EN_YEARS.match(text, end)) and _latin_end(text, years.end()):
            add(start, years.end(), value, AgeKind.STATED)  # "a woman of thirty-five years"
            continue
        if token.kind in ("digits", "english") and value in (10, 20, 30, 40, 50, 60, 70, 80, 90):
            plural = _EN_DECADE_DIGITS.match(text, end) if token.kind == "digits" else None
            something = _EN_SOMETHING.match(text, end)
            if (plural and _latin_end(text, plural.end())) or (something and _latin_end(text, something.end())):
                span_end = (plural or something).end()
                before = text[max(0, start - 4):start]
                if before.endswith("the ") or grammar["decade_era_after"].match_at(text, span_end + 1):
                    continue  # "the 90s", "90s music": an era
                modifier = _EN_MODIFIER.search(text[max(0, start - 8):start]) if plural else None
                offset = DECADE_OFFSETS[modifier.group(1)] if modifier else 5
                add(modifier and start - len(modifier.group(0)) or start, span_end, value + offset, AgeKind.DECADE)
                continue
        if _stated_after_words(text, token, grammar):
            add(start, end, value, AgeKind.STATED)
    if any(c in text for c in "tr"):
        for m in _EN_DECADE_WORD.finditer(text):
            s, e = m.span()
            if (s and _is_latin(text[s - 1])) or not _latin_end(text, e):
                continue
            modifier, word = m.group(1), m.group(2)
            if text[max(0, s - 4):s] == "the ":
                continue
            base = EN_DECADE_WORDS.get(word, 10)
            add(s, e, base + DECADE_OFFSETS.get(modifier, 5), AgeKind.DECADE)
        for m in _EN_ORDINAL_AGE.finditer(text):
            if m.start() and _is_latin(text[m.start() - 1]):
                continue
            if not (text.startswith(" birthday", m.end()) or text[max(0, m.start() - 3):m.start()] == "'s "):
                continue  # "the fifteenth of May", "my second phone"
            years = _SIMPLE_ORDINALS[m.group(3)] if m.group(3) else EN_TENS[m.group(1)] + _EN_ORDINAL_UNITS[m.group(2)]
            add(m.start(), m.end(), years, AgeKind.STATED)
    found.sort(key=lambda a: a.start)
    result: list[AgeMention] = []
    for age in found:
        if not result or age.start >= result[-1].end:
            result.append(age)
    return result


def _stated_after_words(text: str, token: Token, grammar: Mapping[str, Matcher]) -> bool:
    """A bare number after a word that introduces an age: "I'm 31", "she's 62", "turning 66",
    "나이는 31" (not "budget is 50", "she is 5 minutes away", "올해 5월")."""
    if token.kind not in ("digits", "english"):
        return False
    before_end = token.start
    while before_end > 0 and text[before_end - 1] in " :":
        before_end -= 1
    if grammar["age_before"].ending_at(text, before_end) is None:
        return False
    after = text[token.end:]
    if after[:1] in (",", ".") and after[1:2].isdigit():
        return False
    stripped = after.lstrip()
    if stripped and _is_hangul(stripped[0]) and not stripped.startswith(_KO_AGE_FOLLOWERS):
        return False
    if stripped[:1] in ("%", "₩", "$") or grammar["age_not_after"].match_at(text, len(text) - len(stripped)):
        return False
    return not _near(text, token.start, grammar["budget_context"])


# --------------------------------------------------------------------------- months

MONTH_SEASON = {12: 4, 1: 4, 2: 4, 3: 1, 4: 1, 5: 1, 6: 2, 7: 2, 8: 2, 9: 3, 10: 3, 11: 3}
_NOT_MONTH_AFTER = ("급", "세", "요일", "드컵")


def find_months(text: str, numbers: list[Token] | None = None) -> list[tuple[int, int]]:
    """(position, season code) of every month written with digits: 3월, 12 월."""
    if "월" not in text:
        return []
    numbers = tokens(text) if numbers is None else numbers
    found = []
    for token in numbers:
        if token.kind != "digits" or not 1 <= token.value <= 12 or token.value != int(token.value):
            continue
        rest = text[token.end:]
        rest = rest[1:] if rest.startswith(" ") else rest
        if rest.startswith("월") and not rest.startswith(_NOT_MONTH_AFTER, 1):
            found.append((token.start, MONTH_SEASON[int(token.value)]))
    return found
