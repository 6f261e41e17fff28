"""Small-talk detection: greetings, thanks, reset, "no preference" and off-topic text.

Deliberately keyword based: these intents only decide the WORDING of a reply. What the
customer wants (the slots) always comes from the vectorizer, so a message such as
"hi, I need earbuds" is both a greeting and a normal turn.
"""

from __future__ import annotations

import enum
import re


class Intent(enum.Enum):
    NONE = "none"
    GREETING = "greeting"
    THANKS = "thanks"
    RESET = "reset"
    HELP_REQUEST = "help_request"
    NO_PREFERENCE = "no_preference"
    OFF_TOPIC = "off_topic"


# Korean has no word boundaries worth relying on (particles attach to words), so Korean
# cues are substrings; English cues are whole words/phrases.
_KO = {
    Intent.RESET: ("처음부터", "다시 시작", "새로 시작", "초기화", "리셋"),
    Intent.THANKS: ("감사", "고마", "고맙", "땡큐"),
    # Not "하이": it starts 하이킹 (hiking).
    Intent.GREETING: ("안녕", "반가", "헬로"),
    Intent.HELP_REQUEST: ("추천", "찾고", "찾아", "사려", "사고 싶", "살까", "구경", "도와", "골라"),
    Intent.NO_PREFERENCE: ("상관없", "상관 없", "모르겠", "아무거나", "글쎄", "건너뛰", "패스"),
    Intent.OFF_TOPIC: ("날씨", "뉴스", "주식", "정치", "농담", "코인", "비트코인", "넌 누구", "너는 누구",
                       "이름이 뭐", "축구", "야구 경기"),
}
_EN = {
    Intent.RESET: (r"reset", r"start over", r"start again", r"from scratch", r"restart",
                   r"new conversation", r"forget (it|everything|that)"),
    Intent.THANKS: (r"thanks?", r"thank you", r"thx", r"cheers", r"much appreciated"),
    Intent.GREETING: (r"hi", r"hello", r"hey", r"hiya", r"good (morning|afternoon|evening)", r"howdy"),
    Intent.HELP_REQUEST: (r"recommend\w*", r"suggest\w*", r"looking for", r"help", r"buy", r"shopping",
                          r"browsing", r"what should i get", r"ideas?"),
    Intent.NO_PREFERENCE: (r"don'?t know", r"not sure", r"no idea", r"doesn'?t matter", r"whatever",
                           r"no preference", r"skip", r"any(thing)? (is )?fine", r"dunno", r"pass"),
    Intent.OFF_TOPIC: (r"weather", r"news", r"stocks?", r"politics?", r"jokes?", r"bitcoin",
                       r"who are you", r"your name", r"football", r"soccer", r"what time"),
}
_EN_RE = {
    intent: re.compile(r"\b(?:" + "|".join(patterns) + r")\b", re.IGNORECASE)
    for intent, patterns in _EN.items()
}

# When several cues appear, the one that changes the conversation most wins.
_PRIORITY = (Intent.RESET, Intent.THANKS, Intent.GREETING, Intent.NO_PREFERENCE, Intent.HELP_REQUEST,
             Intent.OFF_TOPIC)


def matches(text: str, intent: Intent) -> bool:
    lowered = text.lower()
    if any(cue in lowered for cue in _KO.get(intent, ())):
        return True
    pattern = _EN_RE.get(intent)
    return bool(pattern and pattern.search(text))


def is_greeting(text: str) -> bool:
    return matches(text, Intent.GREETING)


def is_thanks(text: str) -> bool:
    return matches(text, Intent.THANKS)


def is_reset(text: str) -> bool:
    return matches(text, Intent.RESET)


def is_no_preference(text: str) -> bool:
    return matches(text, Intent.NO_PREFERENCE)


def is_off_topic(text: str) -> bool:
    """Text that is clearly about something other than shopping (weather, news, jokes...)."""
    return matches(text, Intent.OFF_TOPIC)


def classify(text: str) -> Intent:
    """The dominant small-talk intent of a message, NONE when it has none."""
    for intent in _PRIORITY:
        if matches(text, intent):
            return intent
    return Intent.NONE
