"""The local vectorizer: Korean/English/mixed text -> the contract's 6-float vector, with no
network and no model.

Words are data (phrases/ko.toml, phrases/en.toml, compiled by tables.py); grammar is code
(numbers.py: numerals, money, ages, months; people.py: speaker vs recipient, purpose,
corrections). This module puts the slots together:

- purpose first, because age and gender describe the USER of the product (people.py);
- interest: a named product type decides; otherwise uses and hobbies score by strength (strong 2,
  weak 1), the best total wins and ties go to the first mentioned; negated mentions ("게임 말고",
  "not into games") are dropped;
- budget: the largest amount named (a range's upper end), or the last one after a correction;
- season: the first season word, occasion or month named. Never the clock.
"""

from __future__ import annotations

import re

from gateway.vectorizers.base import LOCAL, VectorizeResult
from gateway.vectorizers.local import numbers, people
from gateway.vectorizers.local.tables import Hit, PhraseTables, load_tables
from recommender import schema
from recommender.text import detect_language, normalize

_HANGUL = re.compile(r"[\uac00-\ud7a3\u3130-\u318f]")
_LATIN = re.compile(r"[a-z]")


def _scripts(text: str) -> tuple[bool, bool]:
    return bool(_LATIN.search(text)), bool(_HANGUL.search(text))


class LocalVectorizer:
    """Rule-based vectorizer: no network, no credentials, never unavailable."""

    name = LOCAL

    def __init__(self, tables: PhraseTables | None = None):
        self.tables = tables or default_tables()
        self.grammar = self.tables.grammar
        self._validated: dict[tuple, tuple[float, ...]] = {}

    def vectorize(self, text: str) -> VectorizeResult:
        return VectorizeResult(features=self.features(text), vectorizer=LOCAL, language=detect_language(text))

    def features(self, text: str) -> tuple[float, ...]:
        """The contract vector of any text (nothing stated gives all zeros)."""
        norm = normalize(text)
        scripts = _scripts(norm)
        slots = self.tables.slots
        grammar = self.grammar
        markers = people.SpeakerMarkers(norm, grammar, scripts)
        found_people = people.find_people(norm, slots["gender"].hits(norm, scripts), markers, grammar)
        number_tokens = numbers.tokens(norm)
        ages = numbers.find_ages(norm, grammar, number_tokens)
        ages += [numbers.AgeMention(h.start, h.end, h.value,
                                    numbers.AgeKind.STATED if h.group == "milestone" else numbers.AgeKind.STAGE)
                 for h in slots["age"].hits(norm, scripts)]
        signals = people.purpose_signals(norm, slots["purpose"].hits(norm, scripts), found_people, grammar)
        describes_self = any(p.role is people.Role.SPEAKER and p.mention is not people.Mention.PRONOUN
                             for p in found_people) or any(markers.describes(a.start) for a in ages)
        purpose = people.decide_purpose(norm, signals, grammar, describes_self)
        vector = (
            people.decide_age(purpose, ages, markers),
            people.decide_gender(purpose, found_people),
            self._budget(norm, number_tokens),
            self._interest(norm, scripts),
            int(purpose),
            self._season(norm, scripts, number_tokens),
        )
        return self._valid(vector)

    # ----------------------------------------------------------------------- slots

    def _budget(self, text: str, number_tokens: list[numbers.Token]) -> int:
        amounts = numbers.find_amounts(text, self.grammar, number_tokens)
        if not amounts:
            return 0
        corrections = self.grammar["correction"].hits(text)
        if corrections:
            after = [a for a in amounts if a.start >= corrections[-1].end]
            if after:
                return after[-1].won
        return max(a.won for a in amounts)

    def _negated_interest(self, text: str, hit: Hit) -> bool:
        grammar = self.grammar
        pos = hit.end
        particle = grammar["particle"].match_at(text, pos)
        if particle:
            pos = particle.end
        pos += text[pos:pos + 1] == " "
        if grammar["interest_negation_after"].match_at(text, pos):
            return True
        words = text[max(0, hit.start - 30):hit.start].split()
        while words and grammar["negation_filler"].fullmatch(words[-1]):
            words.pop()
        if not words:
            return False
        negators = grammar["interest_negation_before"]
        return (words[-1].endswith("n't") or negators.fullmatch(words[-1])
                or (len(words) > 1 and negators.fullmatch(" ".join(words[-2:]))))

    def _interest(self, text: str, scripts: tuple[bool, bool]) -> int:
        kept = [h for h in self.tables.slots["interest"].hits(text, scripts) if not self._negated_interest(text, h)]
        if not kept:
            return 0
        products = [h for h in kept if h.group == "product"]
        scores: dict[int, int] = {}
        first: dict[int, int] = {}
        for hit in products or kept:
            scores[hit.value] = scores.get(hit.value, 0) + hit.strength
            first.setdefault(hit.value, hit.start)
        return max(scores, key=lambda code: (scores[code], -first[code]))

    def _season(self, text: str, scripts: tuple[bool, bool], number_tokens: list[numbers.Token]) -> int:
        named = [(h.start, h.value) for h in self.tables.slots["season"].hits(text, scripts)]
        named += numbers.find_months(text, number_tokens)
        return min(named)[1] if named else 0

    def _valid(self, vector: tuple) -> tuple[float, ...]:
        """schema.validate_features, remembered per vector (the answer depends on the values only)."""
        done = self._validated.get(vector)
        if done is None:
            done = schema.validate_features(vector)
            if len(self._validated) >= 4096:
                self._validated.clear()
            self._validated[vector] = done
        return done


_DEFAULT: PhraseTables | None = None


def default_tables() -> PhraseTables:
    """The project's phrase tables, compiled once per process."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load_tables()
    return _DEFAULT


def extract_features(text: str) -> tuple[float, ...]:
    """The contract vector of a text with the project's phrase tables."""
    return _shared().features(text)


_SHARED: LocalVectorizer | None = None


def _shared() -> LocalVectorizer:
    global _SHARED
    if _SHARED is None:
        _SHARED = LocalVectorizer()
    return _SHARED
