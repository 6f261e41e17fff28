"""Typo tolerance: a second, looser reading of a slot when its exact phrases found nothing.

Customers type fast: "카매라", "스마트와치", "잇어요", "readign", "grandmaa", "hedphones". The
phrase tables stay exact (a phrase means what it says); this module only runs when a slot has no
hit at all, so a typo can never outvote a word spelled right.

- Korean: the vowels and final consonants people confuse sound alike (ㅐ/ㅔ, ㅒ/ㅖ, ㅘ/ㅝ, ㅙ/ㅚ/ㅞ,
  final ㅆ/ㅅ). Both the text and the Hangul phrases are folded syllable by syllable, which keeps
  every position, and the folded phrases are matched like the exact ones (tables.Matcher).
- English: a word of 5+ letters one edit (insert, delete, substitute, swap two neighbours) from a
  one-word phrase of 5+ letters with the same first letter. Many real words are one edit from a
  phrase ("coming" / "coding", "banking" / "baking"): those are listed in
  phrases/en_near_words.txt, generated from an English word list by `python -m
  gateway.vectorizers.local.typos --write` (tests check it is current), and never corrected.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from gateway.vectorizers.local.tables import Entry, Hit

NEAR_WORDS_FILE = Path(__file__).resolve().parent / "phrases" / "en_near_words.txt"
MIN_LETTERS = 5

# ------------------------------------------------------------------------------ Korean

_SYLLABLE_BASE, _SYLLABLE_LAST = 0xAC00, 0xD7A3
_VOWELS, _FINALS = 21, 28
# vowel index -> the vowel it is folded into (ㅐ->ㅔ, ㅒ->ㅖ, ㅘ->ㅝ, ㅙ/ㅚ->ㅞ)
_VOWEL_FOLD = {1: 5, 3: 7, 9: 14, 10: 15, 11: 15}
# final consonant index -> folded (ㅆ->ㅅ)
_FINAL_FOLD = {20: 19}


def syllable_parts(ch: str) -> tuple[int, int, int] | None:
    """(lead, vowel, final) jamo indexes of a Hangul syllable, None for any other character."""
    code = ord(ch)
    if not _SYLLABLE_BASE <= code <= _SYLLABLE_LAST:
        return None
    lead, rest = divmod(code - _SYLLABLE_BASE, _VOWELS * _FINALS)
    return (lead, *divmod(rest, _FINALS))


def _fold_char(ch: str) -> str:
    parts = syllable_parts(ch)
    if parts is None:
        return ch
    lead, vowel, final = parts
    vowel = _VOWEL_FOLD.get(vowel, vowel)
    final = _FINAL_FOLD.get(final, final)
    return chr(_SYLLABLE_BASE + (lead * _VOWELS + vowel) * _FINALS + final)


_FOLD_TABLE = {chr(c): _fold_char(chr(c)) for c in range(_SYLLABLE_BASE, _SYLLABLE_LAST + 1)
               if _fold_char(chr(c)) != chr(c)}
_FOLD = str.maketrans(_FOLD_TABLE)


def fold_hangul(text: str) -> str:
    """"카매라" -> "카메라", "와치" -> "워치", "잇어요" == fold("있어요"); same length as text."""
    return text.translate(_FOLD)


# ------------------------------------------------------------------------------ English



def one_edit_apart(a: str, b: str) -> bool:
    """Damerau distance exactly 1: one insertion, deletion, substitution or swap of neighbours."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1:]


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


class EnglishTypos:
    """One-word Latin phrases of a slot, found again when misspelt by one edit."""

    def __init__(self, words: Mapping[str, Entry], near_words: Iterable[str]):
        self.words = {w: e for w, e in words.items() if len(w) >= MIN_LETTERS and w.isalpha() and e.strength}
        for word, entry in list(self.words.items()):  # phrases match their plural too: "podcsts"
            self.words.setdefault(word + ("es" if word.endswith(("s", "x", "ch", "sh")) else "s"), entry)
        self.near_words = frozenset(near_words)
        self._index: dict[str, set[str]] = {}
        self._seen: dict[str, list[str]] = {}
        for word in self.words:
            for key in (word, *_deletes(word)):
                self._index.setdefault(key, set()).add(word)

    def candidates(self, word: str) -> list[str]:
        """The phrases `word` is one edit away from (same first letter), unless it is a phrase or
        a real word itself."""
        if len(word) < MIN_LETTERS or word in self.words or word in self.near_words:
            return []
        found = self._seen.get(word)
        if found is None:  # customers' words repeat: remember the answer (bounded)
            if len(self._seen) >= 8192:
                self._seen.clear()
            found = self._seen[word] = self.neighbours(word)
        return found

    def neighbours(self, word: str) -> list[str]:
        """The phrases one edit away from `word` (same first letter)."""
        if len(word) < MIN_LETTERS:
            return []
        found: set[str] = set()
        for key in (word, *_deletes(word)):
            found |= self._index.get(key, set())
        return sorted(w for w in found if w[0] == word[0] and one_edit_apart(w, word))

    def hits(self, text: str) -> list[Hit]:
        hits = []
        for start, end, word in long_words(text):
            found = self.candidates(word)
            entries = {self.words[w].value for w in found}
            if len(entries) == 1:  # one meaning only: "readign" -> reading
                entry = self.words[found[0]]
                hits.append(Hit(start, end, entry.key, entry.value, entry.strength, entry.group))
        return hits


_LONG_WORD = re.compile(rf"[a-z]{{{MIN_LETTERS},}}")
# (text, its long words): the slots read the same text in turn. One tuple, swapped whole, so
# threads sharing a vectorizer never pair one text with another's words.
_memo: tuple[str, list[tuple[int, int, str]]] = ("", [])


def long_words(text: str) -> list[tuple[int, int, str]]:
    """The Latin words of 5+ letters ("laptop이랑" has "laptop"), remembered for the last text."""
    global _memo
    memo = _memo
    if memo[0] is text:
        return memo[1]
    words = [(m.start(), m.end(), m.group()) for m in _LONG_WORD.finditer(text)]
    _memo = (text, words)
    return words


def load_near_words(path: Path = NEAR_WORDS_FILE) -> list[str]:
    if not path.exists():
        return []
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]


_LETTERS = "abcdefghijklmnopqrstuvwxyz"
# regular endings a word list of lemmas leaves out: plans, planned, planning, planner, sprints
_SUFFIXES = ("s", "es", "ed", "d", "ing", "er", "ers", "y", "ly")
_DROP_E = frozenset({"ed", "ing", "er", "ers", "y"})  # hope -> hoping, hoped; not headphone -> "headphons"


def _one_edit_variants(word: str) -> set[str]:
    """Every string one edit from `word` that keeps its first letter."""
    head, variants = word[0], set()
    for i in range(1, len(word) + 1):
        variants.update(word[:i] + c + word[i:] for c in _LETTERS)  # insert
        if i < len(word):
            variants.add(word[:i] + word[i + 1:])  # delete
            variants.update(word[:i] + c + word[i + 1:] for c in _LETTERS)  # substitute
            if i + 1 < len(word):
                variants.add(word[:i] + word[i + 1] + word[i] + word[i + 2:])  # swap
    variants.discard(word)
    return {v for v in variants if v[0] == head}


def _is_real(word: str, dictionary: set[str]) -> bool:
    if word in dictionary:
        return True
    for suffix in _SUFFIXES:
        if word.endswith(suffix):
            base = word[:-len(suffix)]
            if base in dictionary or (suffix in _DROP_E and base + "e" in dictionary) or (
                    len(base) > 2 and base[-1] == base[-2] and base[:-1] in dictionary):
                return True  # plans; hoping (hope); planned (plan)
    return False


def near_words(vocabulary: Iterable[str], dictionary: Iterable[str]) -> list[str]:
    """Real words (and their regular inflections) one edit from a phrase of the vocabulary (same
    first letter, 5+ letters), which EnglishTypos must not correct."""
    words = {w.lower() for w in dictionary if w.isalpha() and w.islower()}
    typos = EnglishTypos({w: _ANY for w in vocabulary}, ())
    return sorted({v for word in typos.words for v in _one_edit_variants(word)
                   if len(v) >= MIN_LETTERS and _is_real(v, words)})


_ANY = Entry("", "", 1, "", 1, "")


def _vocabulary() -> list[str]:
    from gateway.vectorizers.local.tables import TYPO_SLOTS, load_tables

    tables = load_tables()
    return sorted({w for slot in TYPO_SLOTS for w in tables.slots[slot].latin_words()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="write phrases/en_near_words.txt from an English word list")
    parser.add_argument("--write", action="store_true", help="write the file (default: only print a count)")
    args = parser.parse_args(argv)
    from english_words import get_english_words_set  # a development dependency only

    words = near_words(_vocabulary(), get_english_words_set(["web2", "gcide"], lower=True, alpha=True))
    if args.write:
        NEAR_WORDS_FILE.write_text(
            "# Real English words one edit from a one-word phrase: never corrected as typos.\n"
            "# Generated by `python -m gateway.vectorizers.local.typos --write` (english-words: web2, gcide).\n"
            + "".join(w + "\n" for w in words), encoding="utf-8")
    print(f"{len(words)} near words")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
