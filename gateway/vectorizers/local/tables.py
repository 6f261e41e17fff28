"""The phrase tables (phrases/ko.toml, phrases/en.toml) compiled into one matcher per slot.

A table file holds nothing but data: `[slot.key]` sections whose lists are strengths and whose
strings are phrases (see the header of phrases/ko.toml for the syntax). Here each slot's phrases,
from every file, become one trie-shaped regular expression per script (Latin phrases match whole
words; Hangul phrases match inside words, optionally only at a word's start or end), scanned
leftmost-longest: where two phrases overlap the longer wins, which is how "딸기" (listed as `none`)
keeps "딸" (daughter) from matching inside it. No rule depends on the order of a list.

Everything is checked when the tables load (at gateway start): an unknown slot, code key or
strength, a phrase listed twice (in one file or across files), or a malformed phrase raises
PhraseTableError naming the file and section.
"""

from __future__ import annotations

import bisect
import re
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from recommender import schema

PHRASES_DIR = Path(__file__).resolve().parent / "phrases"
DEFAULT_FILES = (PHRASES_DIR / "ko.toml", PHRASES_DIR / "en.toml")

NONE = "none"  # look-alike words that match and mean nothing
NEUTRAL = "neutral"  # people without a gender (친구, parents)

# slot -> strength name -> strength (higher decides first; 0: ignore)
STRENGTHS: dict[str, dict[str, int]] = {
    "interest": {"product": 3, "strong": 2, "weak": 1, "ignore": 0},
    "gender": {"person": 3, "word": 2, "pronoun": 1, "ignore": 0},
    "purpose": {"reflexive": 3, "strong": 2, "weak": 1, "plan": 1, "context": 1, "speaker": 1, "ignore": 0},
    "season": {"strong": 1, "ignore": 0},
    "age": {"milestone": 2, "stage": 1, "ignore": 0},
}
GRAMMAR = "grammar"
GRAMMAR_GROUPS = frozenset({
    "speaker", "speaker_break", "correction", "with_before", "with_after", "gift_negation_after",
    "gift_negation_before", "interest_negation_after", "interest_negation_before", "negation_filler", "particle",
    "budget_context", "age_before", "age_not_after", "decade_era_after", "interest_alternative_after", "advisor_after",
    "speaker_copula_after", "question", "context_after", "context_before", "statement_ending", "person_negation_after", "speaker_after", "budget_decision_after", "statement_words", "request_final", "generic_people", "time_clause_after", "advice", "self_recipient", "decision_after", "decision_before",
})


class PhraseTableError(ValueError):
    """A phrase table that cannot be used; the message names the file, section and phrase."""


def _code_keys(slot: str) -> dict[str, int]:
    """The keys a slot's sections may use, with the value each stands for."""
    if slot == "age":
        keys = {str(years): years for years in range(1, schema.MAX_AGE + 1)}
    else:
        keys = {code.key: code.value for code in schema.SLOT_BY_NAME[slot].codes}
        if slot == "gender":
            keys[NEUTRAL] = 0
    keys[NONE] = 0
    return keys


class Hit(NamedTuple):
    start: int
    end: int
    key: str  # code key ("fitness"), "neutral", a grammar group, or str(years) for age
    value: int  # the code's value (0 for neutral), or years for age
    strength: int  # STRENGTHS[slot][group]; 0 never leaves a matcher
    group: str  # the strength's name ("product", "person"...)


@dataclass(frozen=True)
class Entry:
    phrase: str  # as written in the file
    key: str
    value: int
    group: str
    strength: int
    source: str  # "ko.toml [interest.fitness] strong"


_HANGUL_CHAR = re.compile(r"[\uac00-\ud7a3\u3130-\u318f]")
_LATIN_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyz")
_HANGUL_SYLLABLES = frozenset(chr(c) for c in range(0xAC00, 0xD7A4))
_LATIN_ONLY = re.compile(r"[a-z0-9 '\-+.&/,]+")
_REMOVED_IN_KEY = str.maketrans("", "", " -'\t\n")


def _canonical(text: str) -> str:
    return text.translate(_REMOVED_IN_KEY)


# Trie tokens for the phrase syntax; every other character stands for itself.
_SPACE, _APOS = "\x00space", "\x00apos"
_END, _END_WORD, _END_STEM, _END_PLURAL = "", "(?![\uac00-\ud7a3])", "[a-z]*", "(?:e?s)?"
_PIECES = {_SPACE: r"[\s\-]?", _APOS: "'?"}


@dataclass
class _Parsed:
    tokens: list[str]
    canonical: str
    latin: bool
    word_start: bool
    end: str  # one of the _END... pieces


def _parse_phrase(raw: str, where: str) -> _Parsed:
    if not isinstance(raw, str):
        raise PhraseTableError(f"{where}: phrases must be strings, got {raw!r}")
    phrase = " ".join(raw.lower().split())
    word_start = phrase.startswith("^")
    word_end = phrase.endswith("$")
    stem = phrase.endswith("*")
    body = phrase.strip("^$*").strip()
    if not body or any(c in body for c in "^$*"):
        raise PhraseTableError(f"{where}: malformed phrase {raw!r} (^ only in front, $ or * only at the end)")
    latin = _HANGUL_CHAR.search(body) is None
    if latin and not _LATIN_ONLY.fullmatch(body):
        raise PhraseTableError(f"{where}: phrase {raw!r} has characters outside Latin letters, digits and ' - + . & / ,")
    if latin and (word_start or word_end):
        raise PhraseTableError(f"{where}: phrase {raw!r}: Latin phrases are whole words already; ^ and $ are for Hangul")
    if not latin and stem:
        raise PhraseTableError(f"{where}: phrase {raw!r}: * is for Latin stems")
    tokens = [_SPACE if c in " -" else _APOS if c == "'" else c for c in body]
    if latin:
        # the automatic plural only for words of 3+ letters ("i" must not match "is")
        last_word = body.replace("-", " ").split()[-1]
        end = _END_STEM if stem else (_END_PLURAL if last_word.isalpha() and len(last_word) >= 3 else _END)
    else:
        end = _END_WORD if word_end else _END
    return _Parsed(tokens, _canonical(body), latin, word_start, end)


class _Trie:
    def __init__(self) -> None:
        self.root: dict = {}

    def add(self, tokens: Sequence[str], end: str) -> None:
        node = self.root
        for token in tokens:
            node = node.setdefault(token, {})
        node.setdefault(None, set()).add(end)

    def pattern(self) -> str:
        return self._emit(self.root)

    def _emit(self, node: dict) -> str:
        branches = [_PIECES.get(tok) or re.escape(tok) for tok in sorted(k for k in node if k is not None)]
        alternatives = [piece + self._emit(node[tok])
                        for piece, tok in zip(branches, sorted(k for k in node if k is not None), strict=True)]
        # A phrase ending here is tried after the longer phrases that continue (longest wins).
        alternatives.extend(sorted(node.get(None, ()), key=len, reverse=True))
        if len(alternatives) == 1:
            return alternatives[0]
        return "(?:" + "|".join(alternatives) + ")"


class Matcher:
    """All phrases of one slot (or one grammar group): leftmost-longest hits in a text."""

    def __init__(self, name: str, entries: Iterable[tuple[_Parsed, Entry]]):
        self.name = name
        self._exact: dict[tuple[bool, str], Entry] = {}
        self._stems: dict[str, Entry] = {}
        self._seen: dict[str, Entry] = {}  # matched text -> entry (a matched text is Latin or not, never both)
        tries = {"latin": _Trie(), "hangul": _Trie(), "hangul_start": _Trie()}
        for parsed, entry in entries:
            stems = parsed.end == _END_STEM
            key = (parsed.latin, parsed.canonical)
            clash = self._stems.get(parsed.canonical) if stems else self._exact.get(key)
            if clash is not None:
                raise PhraseTableError(f"{entry.source}: phrase {entry.phrase!r} is already listed in {clash.source}"
                                       f" ({clash.phrase!r}); list each phrase once")
            (self._stems if stems else self._exact)[parsed.canonical if stems else key] = entry
            kind = "latin" if parsed.latin else "hangul_start" if parsed.word_start else "hangul"
            tries[kind].add(parsed.tokens, parsed.end)
        # The character before a match is checked in Python, not with a lookbehind: a pattern that
        # starts with a lookbehind loses the regex engine's first-character scan (2-6x slower).
        self._latin = self._compile(tries["latin"], "(?:", r")(?![a-z])")
        self._hangul = self._compile(tries["hangul"], "(?:", ")")
        self._hangul_start = self._compile(tries["hangul_start"], "(?:", ")")
        # (pattern, Latin?, characters that may not come right before a match)
        self._scans = tuple((rx, latin, before) for rx, latin, before in (
            (self._latin, True, _LATIN_LETTERS), (self._hangul, False, None),
            (self._hangul_start, False, _HANGUL_SYLLABLES)) if rx is not None)

    @staticmethod
    def _compile(trie: _Trie, before: str, after: str) -> re.Pattern | None:
        if not trie.root:
            return None
        return re.compile(before + trie.pattern() + after)

    def __len__(self) -> int:
        return len(self._exact) + len(self._stems)

    def latin_words(self) -> dict[str, Entry]:
        """What EnglishTypos corrects towards: every Latin phrase of letters only, written as one
        word ("girl friend" is also "girlfriend"), stems as their letters ("photograph*")."""
        words = {canonical: entry for (latin, canonical), entry in self._exact.items()
                 if latin and canonical.isalpha()}
        for stem, entry in self._stems.items():
            if stem.isalpha():
                words.setdefault(stem, entry)
        return words

    def _entry(self, matched: str, latin: bool) -> Entry:
        cached = self._seen.get(matched)
        if cached is None:
            cached = self._seen[matched] = self._lookup(matched, latin)
            if len(self._seen) > 4096:
                self._seen.clear()
        return cached

    def _lookup(self, matched: str, latin: bool) -> Entry:
        key = "".join(_canonical(matched).split())
        entry = self._exact.get((latin, key))
        if entry is None and latin:
            for cut in (1, 2):  # the automatic plural: gifts, classes
                entry = self._exact.get((True, key[:-cut]))
                if entry is not None:
                    break
        if entry is None and latin:
            for size in range(len(key), 0, -1):
                entry = self._stems.get(key[:size])
                if entry is not None:
                    break
        if entry is None:  # cannot happen: every match comes from a listed phrase
            raise LookupError(f"{self.name}: no phrase for {matched!r}")
        return entry

    def _raw(self, text: str, start: int = 0, end: int | None = None, scripts: tuple[bool, bool] = (True, True)):
        stop = len(text) if end is None else end
        found: list[tuple[int, int, Entry]] = []
        for rx, latin, before in self._scans:
            if not scripts[0 if latin else 1]:
                continue
            if before is None:
                found.extend((m.start(), m.end(), self._entry(m.group(), latin)) for m in rx.finditer(text, start, stop))
                continue
            pos = start
            while (m := rx.search(text, pos, stop)) is not None:
                s = m.start()
                if s and text[s - 1] in before:
                    pos = s + 1  # inside a word: try again one character later, as a lookbehind would
                    continue
                found.append((s, m.end(), self._entry(m.group(), latin)))
                pos = m.end()
        return found

    def hits(self, text: str, scripts: tuple[bool, bool] = (True, True), keep_ignored: bool = False) -> list[Hit]:
        """Non-overlapping hits in text order; where hits overlap the longest wins (then the
        leftmost). `scripts` = (text has Latin letters, text has Hangul): a scan that cannot
        match is skipped."""
        found = self._raw(text, scripts=scripts)
        if not found:
            return []
        taken: list[tuple[int, int, Entry]] = []
        if len(found) == 1:
            taken = found
        else:
            starts: list[int] = []  # of the taken hits, sorted; taken hits never overlap
            ends: list[int] = []
            for item in sorted(found, key=lambda f: (f[0] - f[1], f[0])):
                i = bisect.bisect_left(starts, item[0])
                if (i < len(starts) and starts[i] < item[1]) or (i and ends[i - 1] > item[0]):
                    continue  # overlaps the next or the previous taken hit
                starts.insert(i, item[0])
                ends.insert(i, item[1])
                taken.insert(i, item)
        return [Hit(s, e, en.key, en.value, en.strength, en.group) for s, e, en in taken
                if keep_ignored or en.strength]

    def match_at(self, text: str, pos: int) -> Hit | None:
        """The longest phrase that starts exactly at `pos`."""
        if pos >= len(text):
            return None
        best = None
        for rx, latin, before in self._scans:
            if before is not None and pos and text[pos - 1] in before:
                continue
            m = rx.match(text, pos)
            if m and m.end() > pos and (best is None or m.end() > best[1]):
                best = (m.start(), m.end(), self._entry(m.group(), latin))
        if best is None or not best[2].strength:
            return None
        return Hit(best[0], best[1], best[2].key, best[2].value, best[2].strength, best[2].group)

    def ending_at(self, text: str, end: int, window: int = 24) -> Hit | None:
        """A phrase that ends right before `end` (spaces between are skipped)."""
        while end > 0 and text[end - 1] == " ":
            end -= 1
        start = max(0, end - window)
        best = None
        for s, e, entry in self._raw(text, start, end):
            if e == end and entry.strength and (best is None or s < best[0]):
                best = (s, e, entry)
        if best is None:
            return None
        return Hit(best[0], best[1], best[2].key, best[2].value, best[2].strength, best[2].group)

    def fullmatch(self, text: str) -> bool:
        """Whether the whole text is one listed phrase."""
        for rx, latin, _ in self._scans:
            if rx.fullmatch(text) and self._entry(text, latin).strength:
                return True
        return False

    def search(self, text: str, start: int = 0, end: int | None = None) -> Hit | None:
        """The first hit in text[start:end]."""
        found = [f for f in self._raw(text, start, end) if f[2].strength]
        if not found:
            return None
        s, e, entry = min(found, key=lambda f: (f[0], f[0] - f[1]))
        return Hit(s, e, entry.key, entry.value, entry.strength, entry.group)


# Slots read again with typo tolerance when their exact phrases found nothing (typos.py): English
# one-edit typos for these; Korean folded vowels for interest only (the Hangul person and purpose
# words of 3+ syllables are rarely misspelt so, and most messages name no person: a second scan
# for nothing on every message).
TYPO_SLOTS = ("interest", "gender", "purpose", "season")
FOLDED_SLOTS = ("interest",)


@dataclass(frozen=True)
class PhraseTables:
    slots: dict[str, Matcher]  # interest, gender, purpose, season, age
    grammar: dict[str, Matcher]  # GRAMMAR_GROUPS
    folded: dict[str, Matcher] = field(default_factory=dict)  # FOLDED_SLOTS' Hangul phrases, vowels folded
    english_typos: dict = field(default_factory=dict)  # TYPO_SLOTS -> typos.EnglishTypos
    fold: Callable[[str], str] = str  # typos.fold_hangul, the reading the folded matchers expect

    def phrase_count(self) -> int:
        return sum(len(m) for m in self.slots.values()) + sum(len(m) for m in self.grammar.values())

    def hits(self, slot: str, text: str, scripts: tuple[bool, bool]) -> list[Hit]:
        """A slot's hits; for TYPO_SLOTS with none, its hits read with typo tolerance
        ("카매라", "readign")."""
        found = self.slots[slot].hits(text, scripts)
        if found or slot not in self.english_typos:
            return found
        if scripts[1] and slot in self.folded:
            found = self.folded[slot].hits(self.fold(text), scripts)
        if not found and scripts[0]:
            found = self.english_typos[slot].hits(text)
        return found


def load_tables(paths: Sequence[str | Path] = DEFAULT_FILES) -> PhraseTables:
    """Read and check the phrase files, then compile one matcher per slot and grammar group."""
    slot_entries: dict[str, list[tuple[_Parsed, Entry]]] = {slot: [] for slot in STRENGTHS}
    grammar_entries: dict[str, list[tuple[_Parsed, Entry]]] = {group: [] for group in GRAMMAR_GROUPS}
    for path in paths:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise PhraseTableError(f"{path.name}: cannot read phrase table: {exc}") from exc
        for slot, sections in data.items():
            if slot == GRAMMAR:
                for group, phrases in _mapping(sections, f"{path.name} [{slot}]").items():
                    where = f"{path.name} [{slot}] {group}"
                    if group not in GRAMMAR_GROUPS:
                        raise PhraseTableError(f"{where}: unknown grammar list; known: {', '.join(sorted(GRAMMAR_GROUPS))}")
                    for raw in _phrases(phrases, where):
                        grammar_entries[group].append((_parse_phrase(raw, where), Entry(raw, group, 1, group, 1, where)))
                continue
            if slot not in STRENGTHS:
                raise PhraseTableError(f"{path.name}: unknown section [{slot}]; known: "
                                       f"{', '.join([*STRENGTHS, GRAMMAR])}")
            keys = _code_keys(slot)
            for key, groups in _mapping(sections, f"{path.name} [{slot}]").items():
                if key not in keys:
                    known = ", ".join(k for k in keys if not k.isdigit()) + (", 1..100" if slot == "age" else "")
                    raise PhraseTableError(f"{path.name} [{slot}.{key}]: unknown key {key!r} for {slot}; known: {known}")
                for group, phrases in _mapping(groups, f"{path.name} [{slot}.{key}]").items():
                    where = f"{path.name} [{slot}.{key}] {group}"
                    if group not in STRENGTHS[slot]:
                        raise PhraseTableError(f"{where}: unknown strength {group!r}; known: {', '.join(STRENGTHS[slot])}")
                    if (key == NONE) != (group == "ignore"):
                        raise PhraseTableError(f"{where}: 'ignore' lists belong under [{slot}.none], and only there")
                    for raw in _phrases(phrases, where):
                        entry = Entry(raw, key, keys[key], group, STRENGTHS[slot][group], where)
                        slot_entries[slot].append((_parse_phrase(raw, where), entry))
    from gateway.vectorizers.local import typos

    slots = {slot: Matcher(slot, entries) for slot, entries in slot_entries.items()}
    # a word that is a phrase of any slot ("sprints") is never another slot's typo ("springs")
    known = {w for matcher in slots.values() for w in matcher.latin_words()}
    near_words = set(typos.load_near_words()) | known | {w + "s" for w in known} | {w + "es" for w in known}
    return PhraseTables(
        slots=slots,
        grammar={group: Matcher(group, entries) for group, entries in grammar_entries.items()},
        folded={slot: Matcher(slot + " (folded)", _folded(slot_entries[slot], typos.fold_hangul)) for slot in FOLDED_SLOTS},
        english_typos={slot: typos.EnglishTypos(slots[slot].latin_words(), near_words) for slot in TYPO_SLOTS},
        fold=typos.fold_hangul,
    )


# A folded phrase of fewer syllables often IS another word ("내일" tomorrow folds to "네일" nail,
# "갬성" to "겜성"): only longer phrases are read folded.
MIN_FOLDED_SYLLABLES = 3


def _folded(entries: list[tuple[_Parsed, Entry]], fold) -> list[tuple[_Parsed, Entry]]:
    """The Hangul phrases with their vowels folded; of phrases that fold alike, the first."""
    seen: set[str] = set()
    folded = []
    for parsed, entry in entries:
        if parsed.latin or len(_HANGUL_CHAR.findall(parsed.canonical)) < MIN_FOLDED_SYLLABLES:
            continue
        raw = fold(entry.phrase)
        again = _parse_phrase(raw, entry.source)
        if again.canonical in seen:
            continue
        seen.add(again.canonical)
        folded.append((again, entry))
    return folded


def _mapping(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise PhraseTableError(f"{where}: expected a table of lists, got {type(value).__name__}")
    return value


def _phrases(value, where: str) -> list:
    if not isinstance(value, list):
        raise PhraseTableError(f"{where}: expected a list of phrases, got {type(value).__name__}")
    return value
