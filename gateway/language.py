"""Which language a customer wrote in: "ko" or "en".

Used by the vectorizers (reported in responses) and by chat (to answer in kind). Korean
when Hangul carries a meaningful share of the letters, else English. One Hangul syllable
carries about as much as two or three Latin letters, so syllables are weighted; this keeps
"엄마 birthday gift 추천" Korean and "a gift for my 엄마" English.
"""

from __future__ import annotations

import re

KOREAN = "ko"
ENGLISH = "en"

# Hangul syllables, jamo and compatibility jamo (ㅋㅋ, ㅎㅇ count as Korean).
_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_LATIN = re.compile(r"[A-Za-z]")
_HANGUL_WEIGHT = 2.5


def detect_language(text: str) -> str:
    """"ko" if the text is mostly Korean by weighted letter count, else "en" (also for
    text with no letters at all, e.g. digits or emoji)."""
    hangul = len(_HANGUL.findall(text))
    if hangul == 0:
        return ENGLISH
    latin = len(_LATIN.findall(text))
    return KOREAN if hangul * _HANGUL_WEIGHT >= latin else ENGLISH
