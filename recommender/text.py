"""Customer text helpers shared by every process: normalization and the one language detector.

The gateway's vectorizers report the language they read (VectorizeResponse.language), the chat
answers in the customer's language, and the Bedrock vectorizers and the local one must agree on
what "Korean" means: all of them call detect_language here.
"""

from __future__ import annotations

import re
import unicodedata

KOREAN = "ko"
ENGLISH = "en"

# Hangul syllables, jamo and compatibility jamo (ㅋㅋ, ㅎㅇ count as Korean).
_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_LATIN = re.compile(r"[A-Za-z]")
# One Hangul syllable carries about as much as two or three Latin letters, so syllables are
# weighted: "엄마 birthday gift 추천" is Korean, "a gift for my 엄마" is English.
_HANGUL_WEIGHT = 2.5
_SPACES = re.compile(r"\s+")
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u201c": '"', "\u201d": '"'})


def detect_language(text: str) -> str:
    """"ko" if the text is mostly Korean by weighted letter count, else "en" (also for text with
    no letters at all, e.g. digits or emoji)."""
    hangul = len(_HANGUL.findall(text))
    if hangul == 0:
        return ENGLISH
    latin = len(_LATIN.findall(text))
    return KOREAN if hangul * _HANGUL_WEIGHT >= latin else ENGLISH


def has_letters(text: str) -> bool:
    """Whether the text has any Hangul or Latin letter ("300000" and "👍" have none)."""
    return bool(_HANGUL.search(text) or _LATIN.search(text))


def normalize(text: str) -> str:
    """The form rules read: NFKC (full-width digits and ￦ become ASCII/₩), lower case, straight
    quotes, one space between words."""
    text = unicodedata.normalize("NFKC", text).lower().translate(_QUOTES)
    return _SPACES.sub(" ", text).strip()
