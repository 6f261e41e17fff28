"""Which rules of the local vectorizer can match a text, decided before scanning it.

A regex can only match a text that contains one of the strings its matches can start with. Most
rules (a Korean word list, an amount that needs a digit) start with strings that most messages
lack, so a cheap test per rule skips most scans.

Two-character beginnings, tested in one pass: sharper than the first character (Korean words
share few syllables, but "게" starts many), a rule's keys are the two-character beginnings every
match has ("게임", "ga"...), or one character when a rule's matches can be that short, or when
digits make the two-character set too big. Every registered rule gets one bit; one pass over a
text's characters and character pairs ORs the bits of the rules it can match, and a rule whose
bit is clear cannot match: its scan is skipped. A second test asks for the literal strings every
match contains ("원"/"won"/"krw" after a digit). The analysis reads the patterns with the
standard library's own parser (re._parser) and is conservative (anything it does not
understand: "always scan"), so the matches found, and their order, are exactly those of scanning
every rule.
"""

from __future__ import annotations

import re

try:
    from re import _constants as _sre_c
    from re import _parser as _sre_parse
except ImportError:  # another interpreter layout: no prefilter, same results
    _sre_c = _sre_parse = None


class _Unknown(Exception):
    """A pattern construct the analysis does not understand: the rule is scanned always."""


_KEYS_MAX = 4096  # beginnings per rule; beyond that the rule is scanned always
_SPACE_CHARS = frozenset(chr(c) for c in range(0x110000) if re.match(r"\s", chr(c)))
_DIGIT_CHARS = frozenset(chr(c) for c in range(0x110000) if re.match(r"\d", chr(c)))


def _in_chars(items) -> set[str]:
    chars: set[str] = set()
    for op, av in items:
        if op is _sre_c.LITERAL:
            chars.add(chr(av))
        elif op is _sre_c.RANGE:
            chars.update(chr(c) for c in range(av[0], av[1] + 1))
        elif op is _sre_c.CATEGORY and av is _sre_c.CATEGORY_DIGIT:
            chars |= _DIGIT_CHARS
        elif op is _sre_c.CATEGORY and av is _sre_c.CATEGORY_SPACE:
            chars |= _SPACE_CHARS
        else:
            raise _Unknown  # negated classes, \w...
        if len(chars) > _KEYS_MAX:
            raise _Unknown
    return chars


def _extend(heads: set[str], tails: set[str], k: int) -> set[str]:
    out: set[str] = set()
    for h in heads:
        if len(h) >= k:
            out.add(h)
            continue
        out.update((h + t)[:k] for t in tails)
        if len(out) > _KEYS_MAX:
            raise _Unknown
    return out


def _beginnings(items, k: int) -> set[str]:
    """Every way a match of this sequence can begin, cut to k characters (a shorter string is a
    whole match). Zero-width assertions are skipped: they only ever remove matches."""
    heads = {""}
    for op, av in items:
        if all(len(h) >= k for h in heads):
            break
        if op is _sre_c.LITERAL:
            sub = {chr(av)}
        elif op is _sre_c.IN:
            sub = _in_chars(av)
        elif op in (_sre_c.AT, _sre_c.ASSERT, _sre_c.ASSERT_NOT):
            continue
        elif op is _sre_c.SUBPATTERN:
            if av[1] or av[2]:
                raise _Unknown  # inline flags, e.g. (?i:...)
            sub = _beginnings(av[-1], k)
        elif op is _sre_c.BRANCH:
            sub = set()
            for alternative in av[1]:
                sub |= _beginnings(alternative, k)
        elif op in (_sre_c.MAX_REPEAT, _sre_c.MIN_REPEAT):
            low, high, body = av
            once = _beginnings(body, k)
            sub, reps, n = set(), {""}, 0
            while True:  # 0, 1, 2... repetitions until every beginning is k long
                if n >= low:
                    sub |= reps
                if n >= high or n > low + k or all(len(r) >= k for r in reps):
                    break
                reps = _extend(reps, once, k)
                n += 1
        else:
            raise _Unknown  # ANY, NOT_LITERAL, backreferences...
        heads = _extend(heads, sub, k)
    return heads


_WORD_START_TRIPLES = re.compile(r"(?<![a-z])(?=([a-z]..))", re.DOTALL)


def _starts_a_word(items) -> bool:
    """Whether the pattern begins with the whole-word lookbehind (?<![a-z]) (through groups)."""
    while items:
        op, av = items[0]
        if op is _sre_c.SUBPATTERN:
            items = av[-1]
            continue
        return (op is _sre_c.ASSERT_NOT and av[0] == -1
                and list(av[1]) == [(_sre_c.IN, [(_sre_c.RANGE, (ord("a"), ord("z")))])])
    return False


def _match_keys(rx: re.Pattern) -> tuple[frozenset[str], frozenset[str]] | None:
    """(strings of one or two characters, three-letter word starts), one of which starts every
    match of `rx` (None: unknown).

    A whole-word rule whose matches start with a Latin letter gets word-start keys of three
    characters (a two-character match keeps its pair): in an English text "co" is everywhere,
    but few words start with "com"."""
    if _sre_parse is None or rx.flags & ~re.UNICODE:
        return None
    try:
        parsed = _sre_parse.parse(rx.pattern, rx.flags)
    except (TypeError, ValueError):
        return None
    word = _starts_a_word(parsed)
    for k in (3, 2, 1) if word else (2, 1):
        try:
            keys = _beginnings(parsed, k)
        except (_Unknown, TypeError, ValueError, AttributeError, IndexError, RecursionError):
            continue
        if "" in keys:  # a rule that can match empty text is scanned always
            return None
        if k == 3:
            if all(len(key) >= 2 and "a" <= key[0] <= "z" for key in keys):
                return (frozenset(key for key in keys if len(key) == 2),
                        frozenset(key for key in keys if len(key) == 3))
            continue
        return frozenset(keys), frozenset()
    return None


def _required(items) -> set[str] | None:
    """Literal strings one of which every match of this sequence contains (None: unknown).

    The second half of the prefilter: a rule's beginnings are often just "a digit", but its
    matches also need "원"/"won"/"krw" or "old" somewhere; when the text has none of them the
    scan is skipped. Each sequence offers the best of its items (longest shortest string)."""
    best = None

    def better(a, b):
        if b is None:
            return a
        if a is None:
            return b
        return a if score(a) >= score(b) else b

    def score(need):  # longer is rarer; a digit is in every amount, "대" is not
        return min(map(len, need)), not any(n.isdigit() for n in need), -len(need)

    run = ""
    for op, av in items:
        if op is _sre_c.LITERAL:
            run += chr(av)
            continue
        if op in (_sre_c.AT, _sre_c.ASSERT, _sre_c.ASSERT_NOT):
            continue  # zero width: the literals on either side stay adjacent
        if run:
            best = better(best, {run})
            run = ""
        if op is _sre_c.SUBPATTERN:
            if not (av[1] or av[2]):  # no inline flags, e.g. (?i:...)
                best = better(best, _required(av[-1]))
        elif op is _sre_c.BRANCH:
            union = set()
            for alternative in av[1]:
                need = _required(alternative)
                if need is None:
                    union = None
                    break
                union |= need
            best = better(best, union)
        elif op in (_sre_c.MAX_REPEAT, _sre_c.MIN_REPEAT) and av[0] >= 1:
            best = better(best, _required(av[2]))
        elif op is _sre_c.IN and len(av) <= 8 and all(o is _sre_c.LITERAL for o, _ in av):
            best = better(best, {chr(c) for _, c in av})  # "(?:살|세)" parses as the class [살세]
    if run:
        best = better(best, {run})
    return best


def _required_in(rx: re.Pattern) -> tuple[str, ...] | None:
    """_required of a whole rule, minus strings that contain another ("만" makes "천만" redundant)."""
    if _sre_parse is None or rx.flags & ~re.UNICODE:
        return None
    try:
        need = _required(_sre_parse.parse(rx.pattern, rx.flags))
    except (TypeError, ValueError, AttributeError, IndexError, RecursionError):
        return None
    if not need or "" in need:
        return None
    return tuple(sorted(n for n in need if not any(o != n and o in n for o in need)))


_ANY_DIGIT = re.compile(r"\d")


class RulePrefilter:
    """The prefilter tables of a set of rules: `register` each rule once (at import), then per text
    `possible` once and `absent`/`scan` per rule."""

    def __init__(self) -> None:
        self._bits: dict[re.Pattern, int] = {}
        self._needs: dict[re.Pattern, tuple[str, ...] | None] = {}  # see _required_in
        self._key_bits: dict[str, int] = {}  # character or character pair -> the rules a match can start with it
        self._word_key_bits: dict[str, int] = {}  # three characters at a word start (a Latin letter first) -> rules
        # The same keys as sets: intersecting two sets iterates the smaller one (a text's few grams).
        self._keys: set[str] = set()
        self._word_keys: set[str] = set()
        self._always_bits = 0  # rules the analysis does not understand
        self._digit_led: set[re.Pattern] = set()  # rules every match of which starts with a digit

    def register(self, rx: re.Pattern) -> int:
        """The prefilter bit of a rule (analysed on first registration)."""
        bit = self._bits.get(rx)
        if bit is None:
            bit = self._bits[rx] = 1 << len(self._bits)
            self._needs[rx] = _required_in(rx)
            keys = _match_keys(rx)
            if keys is None:
                self._always_bits |= bit
                return bit
            if not keys[1] and all(key[0] in _DIGIT_CHARS for key in keys[0]):
                self._digit_led.add(rx)
            for table, known, these in ((self._key_bits, self._keys, keys[0]),
                                        (self._word_key_bits, self._word_keys, keys[1])):
                for key in these:
                    table[key] = table.get(key, 0) | bit
                known.update(these)
        return bit

    def possible(self, text: str) -> int:
        """The bits of the rules that can match `text` (those of its characters, character pairs and
        three-letter word starts)."""
        grams = set(text)
        grams.update(map(str.__add__, text, text[1:]))
        bits = self._always_bits
        for key in self._keys.intersection(grams):
            bits |= self._key_bits[key]
        for key in self._word_keys.intersection(_WORD_START_TRIPLES.findall(text)):
            bits |= self._word_key_bits[key]
        return bits

    def absent(self, rx: re.Pattern, possible: int, text: str) -> bool:
        """True when registered rule `rx` cannot match `text`: no possible beginning (`possible` =
        self.possible(text)), or none of the strings every match contains."""
        if not possible & self._bits[rx]:
            return True
        needs = self._needs[rx]
        return needs is not None and not any(map(text.__contains__, needs))

    def scan(self, rx: re.Pattern, possible: int, text: str):
        """rx.finditer(text), or nothing when the prefilter rules the rule out. A digit-led rule's
        scan starts at the first digit: no match can start before it, and lookbehinds still see the
        characters before the start position, so the matches are the same."""
        if self.absent(rx, possible, text):
            return ()
        if rx in self._digit_led:
            digit = _ANY_DIGIT.search(text)
            return rx.finditer(text, digit.start()) if digit else ()
        return rx.finditer(text)
