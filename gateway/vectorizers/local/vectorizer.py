"""The local vectorizer: Korean/English/mixed text -> the contract's 6-float vector, with no
network and no model.

Words are data (phrases/ko.toml, phrases/en.toml, compiled by tables.py); grammar is code
(numbers.py: numerals, money, ages, months; people.py: speaker vs recipient, purpose,
corrections; typos.py: a looser reading of a slot whose exact phrases found nothing). This
module puts the slots together:

- purpose first, because age and gender describe the USER of the product (people.py). With no
  purpose word and no one else named, the contract's own-use rule: the speaker's age, gender,
  use, hobby, body or situation means own use; greetings and product, price or stock questions
  stay 0 ("best earbuds for podcasts?", "정주행용으로는 뭐가 나아요?": a use in a question qualifies
  the product) unless the message also tells the speaker's situation ("어깨결림 심해서 안마기
  추천해 주세요");
- interest: a named product type decides (the one settled on, "카메라로 할게요", wins over others;
  between products named alike, the one the uses point to); otherwise uses and hobbies score by
  strength (strong 2, weak 1), the best total wins and ties go to the first mentioned; negated
  mentions ("게임 말고", "not into games") are dropped; after a correction the product settled on
  last wins;
- how purpose was decided (people.Basis): stated outright or only inferred from a self-description;
  the chat switches an earlier purpose only on a stated one (VectorizeResult.purpose_stated);
- budget: the amount settled on ("40만원으로 줄여 주세요"), else the last one after a correction,
  else the largest named (a range's upper end);
- season: the first season word, occasion or month named. Never the clock.
"""

from __future__ import annotations

import dataclasses
import re

from gateway.vectorizers.base import LOCAL, VectorizeResult
from gateway.vectorizers.local import numbers, people
from gateway.vectorizers.local.tables import Hit, PhraseTables, load_tables
from gateway.vectorizers.local.typos import syllable_parts
from recommender import schema
from recommender.text import detect_language, normalize

_HANGUL = re.compile(r"[\uac00-\ud7a3\u3130-\u318f]")
_FOR_SOMEONE = ("for a ", "for an ", "for my ")
_REFUSALS = ("말고", "빼고", "제외", "싫", "관심 없", "별로")
_LATIN = re.compile(r"[a-z]")


def _scripts(text: str) -> tuple[bool, bool]:
    return bool(_LATIN.search(text)), bool(_HANGUL.search(text))


_AFTER_PERSON = (", ", " (", ",", " - ", " — ", "'s ", " is ")  # "my nephew's fifteen and ..."


def _ages_after_people(text: str, found_people: list[people.Person], number_tokens: list[numbers.Token],
                       ages: list[numbers.AgeMention]) -> list[numbers.AgeMention]:
    """"my nephew, 17, plays soccer", "조카 (17)": a bare number set off right after a person."""
    found = []
    ends = {p.end for p in found_people if p.mention is people.Mention.PERSON}
    for token in number_tokens:
        if token.kind not in ("digits", "english") or any(a.start <= token.start < a.end for a in ages):
            continue
        if not any(text.startswith(sep, end) and end + len(sep) == token.start for end in ends for sep in _AFTER_PERSON):
            continue
        if text[token.end:token.end + 1] in (",", ")", "") or text.startswith((" and", " who", " 살", "살"), token.end):
            years = int(token.value) if token.value == int(token.value) else 0
            if 1 <= years <= schema.MAX_AGE:
                found.append(numbers.AgeMention(token.start, token.end, years, numbers.AgeKind.STATED))
    return found


_TRAILING = re.compile(r"[^0-9a-z\uac00-\ud7a3]+$")
# the vowels a fused -아서/-어서 leaves before 서: 가서, 써서, 셔서, 돼서, 봐서 (not 에서, 께서)
_FUSED_VOWELS = frozenset({0, 4, 1, 6, 9, 14, 10, 15})  # ㅏ ㅓ ㅐ ㅕ ㅘ ㅝ ㅙ ㅞ


def _fused_connective(word: str) -> bool:
    """"쑤셔서", "와서", "켜서": a verb joined to what follows by -아서/-어서 (the reason or sequence)."""
    if len(word) < 2 or not word.endswith("서"):
        return False
    parts = syllable_parts(word[-2])
    return parts is not None and parts[1] in _FUSED_VOWELS and parts[2] == 0  # no final consonant


def _after_correction(text: str, number_tokens: list[numbers.Token], correction_end: int,
                      ages: list[numbers.AgeMention], found_people: list[people.Person]):
    """Ages and people once a correction is made: what comes after it counts."""
    if ages and not any(a.start >= correction_end for a in ages):
        ages = ages + _age_corrected(text, number_tokens, correction_end)  # "who's fifteen, no sorry, sixteen"
    if any(a.start >= correction_end for a in ages):
        ages = [a for a in ages if a.start >= correction_end]  # "he's 15, no wait, 16"
    if any(p.start >= correction_end and p.role is people.Role.RECIPIENT for p in found_people):
        # "for my sister, but actually ... it's for my brother": who comes after the correction
        found_people = [p for p in found_people if p.start >= correction_end or p.role is people.Role.SPEAKER]
    return ages, found_people


def _age_corrected(text: str, number_tokens: list[numbers.Token], correction_end: int) -> list[numbers.AgeMention]:
    """The bare number right after a correction of an age: "fifteen, no sorry, sixteen"."""
    for token in number_tokens:
        if token.start >= correction_end:
            if text[correction_end:token.start].strip(" ,") == "" and token.value == int(token.value) \
                    and 1 <= token.value <= schema.MAX_AGE and not text[token.end:token.end + 1].isalnum():
                return [numbers.AgeMention(token.start, token.end, int(token.value), numbers.AgeKind.STATED)]
            break
    return []


class LocalVectorizer:
    """Rule-based vectorizer: no network, no credentials, never unavailable."""

    name = LOCAL

    def __init__(self, tables: PhraseTables | None = None):
        self.tables = tables or default_tables()
        self.grammar = self.tables.grammar
        self._validated: dict[tuple, tuple[float, ...]] = {}

    def vectorize(self, text: str) -> VectorizeResult:
        features, basis = self.read(text)
        return VectorizeResult(features=features, vectorizer=LOCAL, language=detect_language(text),
                               purpose_stated=basis is not people.Basis.INFERRED)

    def features(self, text: str) -> tuple[float, ...]:
        """The contract vector of any text (nothing stated gives all zeros)."""
        return self.read(text)[0]

    def read(self, text: str) -> tuple[tuple[float, ...], people.Basis]:
        """The contract vector and how its purpose was decided (stated or inferred)."""
        norm = normalize(text)
        scripts = _scripts(norm)
        grammar = self.grammar
        markers = people.SpeakerMarkers(norm, grammar, scripts)
        found_people = people.find_people(norm, self.tables.hits("gender", norm, scripts), markers, grammar)
        number_tokens = numbers.tokens(norm)
        ages = self._ages(norm, scripts, number_tokens, found_people)
        corrections = grammar["correction"].hits(norm)
        correction_end = corrections[-1].end if corrections else None
        interests = self._interests(norm, scripts, correction_end)
        asks = "?" in norm or grammar["question"].search(norm) is not None
        if asks:
            # "What do kids like these days?", "아이들 장난감 있나요?": people in general, not a user
            found_people = [dataclasses.replace(p, role=people.Role.CONTEXT) if p.role is people.Role.RECIPIENT
                            and grammar["generic_people"].fullmatch(norm[p.start:p.end]) else p for p in found_people]
        signals = self._signals(norm, scripts, found_people, ages, interests, asks)
        purpose = people.decide_purpose(norm, signals, grammar, not signals and self._describes_self(
            norm, found_people, ages, interests, markers, asks))
        basis = people.purpose_basis(norm, signals, grammar, purpose)
        if correction_end is not None:
            ages, found_people = _after_correction(norm, number_tokens, correction_end, ages, found_people)
        turn = people.speaker_turn(norm, signals) if purpose is people.Purpose.SELF else None
        if turn is not None:
            # "동생이 밤새 게임을 해서 제가 잠을 못 자요": the other person's doings are not the use
            interests = [h for h in interests if not turn[0] <= h.start < turn[1]] or interests
        vector = (
            people.decide_age(purpose, ages, markers),
            people.decide_gender(purpose, found_people),
            self._budget(norm, number_tokens, correction_end),
            self._interest(norm, interests),
            int(purpose),
            self._season(norm, scripts, number_tokens, correction_end),
        )
        return self._valid(vector), basis

    def _ages(self, text: str, scripts: tuple[bool, bool], number_tokens: list[numbers.Token],
              found_people: list[people.Person]) -> list[numbers.AgeMention]:
        """Ages said with numbers, life stages and milestones (환갑), and numbers set off after a person."""
        ages = numbers.find_ages(text, self.grammar, number_tokens)
        ages += [numbers.AgeMention(h.start, h.end, h.value,
                                    numbers.AgeKind.STATED if h.group == "milestone" else numbers.AgeKind.STAGE)
                 for h in self.tables.slots["age"].hits(text, scripts)]
        return ages + _ages_after_people(text, found_people, number_tokens, ages)

    def _signals(self, text: str, scripts: tuple[bool, bool], found_people: list[people.Person],
                 ages: list[numbers.AgeMention], interests: list[Hit], asks: bool) -> list[people.Signal]:
        """What says who the product is for: purpose words, people, "for a 10 year old"."""
        purpose_hits = self.tables.hits("purpose", text, scripts)
        if not (interests or ages or found_people):
            # "I'd like to spend 300k", "제 budget은": naming oneself about a price says nothing
            # about the user; "I need ...", "제가 쓸 ..." still do (their own lists)
            purpose_hits = [h for h in purpose_hits if h.group not in ("speaker", "context")]
        elif asks:
            # "정주행용으로는 뭐가 나아요?", "배터리 며칠 가요?": a use in a question qualifies the product
            purpose_hits = [h for h in purpose_hits if h.group not in ("context", "plan")]
        signals = people.purpose_signals(text, purpose_hits, found_people, self.grammar)
        signals += [people.Signal(a.start, people.Purpose.GIFT, 1) for a in ages
                    if text[max(0, a.start - 7):a.start].endswith(_FOR_SOMEONE)]  # "for a 10 year old"
        signals += [people.Signal(a.start, people.Purpose.GIFT, 1, person=True) for a in ages
                    if text[max(0, a.start - 3):a.start] == "my " and "year" in text[a.start:a.end]]  # "my 10-year-old"
        return signals

    def _describes_self(self, text: str, found_people: list[people.Person], ages: list[numbers.AgeMention],
                        interests: list[Hit], markers: people.SpeakerMarkers, asks: bool) -> bool:
        """With no purpose word and no one else named: does the speaker say anything about the
        user (then it is themselves, the contract's purpose rule) or only ask about products?"""
        if any(p.role is people.Role.SPEAKER for p in found_people) or any(markers.describes(a.start) for a in ages):
            return True
        if ages or any(p.mention is people.Mention.WORD for p in found_people):
            return True  # "여자 20대", "middle schooler, likes reading"
        uses = [h for h in interests if h.group != "product"]
        if not uses:
            return False
        if asks:
            # "best earbuds for podcasts?", "what would you recommend for stress relief?" ask about
            # products; "드라이기 추천해 주세요 머리가 길어서" also tells the speaker's own situation
            return self._tells_situation(text)
        return True

    def _tells_situation(self, text: str) -> bool:
        """Does the message state something as a fact, beside asking ("머리가 길어서", "어깨결림
        심해서", "허리 개아픔", "식당 하는데", "정신이 없어요", "I can't sleep")? A polite 요 counts
        unless it ends a request or question ("추천해 주세요", "있나요", "뭐가 나아요?")."""
        grammar = self.grammar
        words = text.split()
        for i, raw in enumerate(words):
            if raw.endswith("?"):
                continue
            word = _TRAILING.sub("", raw)
            if not word:
                continue
            if grammar["statement_ending"].ending_at(word, len(word), window=4) is not None or _fused_connective(word):
                return True
            if word.endswith("요") and grammar["request_final"].ending_at(word, len(word)) is None and \
                    grammar["question"].search(" ".join(words[max(0, i - 2):i + 1])) is None:
                return True
        return grammar["statement_words"].search(text) is not None

    # ----------------------------------------------------------------------- slots

    def _budget(self, text: str, number_tokens: list[numbers.Token], correction_end: int | None) -> int:
        amounts = numbers.find_amounts(text, self.grammar, number_tokens)
        if not amounts:
            return 0
        decided = [a for a in amounts if self.grammar["budget_decision_after"].match_at(
            text, a.end + (text[a.end:a.end + 1] == " "))]
        if decided:
            return decided[-1].won  # "50만원이라고 했는데 40만원으로 줄여 주세요"
        if correction_end is not None:
            after = [a for a in amounts if a.start >= correction_end]
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
        negation = None if grammar["interest_alternative_after"].match_at(text, pos) else \
            grammar["interest_negation_after"].match_at(text, pos)
        if negation is not None:
            # symptoms are said with negations ("허리가 안 좋아서", "잠이 안 와"): for them only a
            # refusal ("폼롤러 말고", "마사지 싫어") negates
            if hit.key != "health_relax" or hit.group == "product" or \
                    text.startswith(_REFUSALS, negation.start):
                return True
        if hit.key == "health_relax":
            return False  # symptoms are said with negations: "can't sleep", "잠을 못 자"
        words = text[max(0, hit.start - 30):hit.start].split()
        fillers = 0
        while words and grammar["negation_filler"].fullmatch(words[-1]):
            words.pop()
            fillers += 1
        if not words:
            return False
        negators = grammar["interest_negation_before"]
        # "doesn't like games" (a negated verb needs its verb), "not into games", "no games"
        return ((words[-1].endswith("n't") and fillers > 0) or negators.fullmatch(words[-1])
                or (len(words) > 1 and negators.fullmatch(" ".join(words[-2:]))))

    def _interests(self, text: str, scripts: tuple[bool, bool], correction_end: int | None) -> list[Hit]:
        """The interest mentions that count: not negated; after a correction, the products
        named after it ("노트북을 사려고 ... 아니다 태블릿으로")."""
        kept = [h for h in self.tables.hits("interest", text, scripts) if not self._negated_interest(text, h)]
        decided = [h for h in kept if h.group == "product" and self._decided_on(text, h)]
        if decided:
            return [decided[-1]]  # "처음엔 안마기 생각했는데 ... 카메라로 할게요", "I'll go with the camera"
        if correction_end is not None:
            later = [h for h in kept if h.start >= correction_end]
            products = [h for h in later if h.group == "product"]
            if products:
                return [products[-1]]  # the product settled on last
            if later:
                # "a console ... what I actually need is something to help me sleep"; a product named
                # before that the later uses point to stays ("안마기 ... 생각해 보니 남편도 어깨가")
                codes = {h.value for h in later}
                return [h for h in kept if h.group == "product" and h.value in codes and h.start < correction_end] + later
        return kept

    def _decided_on(self, text: str, hit: Hit) -> bool:
        """A product the customer settles on: "카메라로 할게요", "go with the camera"."""
        if self.grammar["decision_after"].match_at(text, hit.end + (text[hit.end:hit.end + 1] == " ")):
            return True
        return self.grammar["decision_before"].ending_at(text, hit.start, window=20) is not None

    def _interest(self, text: str, kept: list[Hit]) -> int:
        if not kept:
            return 0
        time_clause = self.grammar["time_clause_after"]
        # "공부할 때 음악 들어요": the use done while doing something else decides
        kept = [h._replace(strength=1) if h.group == "strong" and time_clause.match_at(text, h.end) else h for h in kept]
        products = [h for h in kept if h.group == "product"]
        scores: dict[int, int] = {}
        uses: dict[int, int] = {}  # between products named equally often, the one the uses point to
        first: dict[int, int] = {}
        for hit in products or kept:
            scores[hit.value] = scores.get(hit.value, 0) + hit.strength
            first.setdefault(hit.value, hit.start)
        if products:
            for hit in kept:
                if hit.group != "product" and hit.value in scores:
                    uses[hit.value] = uses.get(hit.value, 0) + hit.strength
        return max(scores, key=lambda code: (scores[code], uses.get(code, 0), -first[code]))

    def _season(self, text: str, scripts: tuple[bool, bool], number_tokens: list[numbers.Token],
                correction_end: int | None) -> int:
        named = [(h.start, h.value) for h in self.tables.slots["season"].hits(text, scripts)]
        named += numbers.find_months(text, number_tokens)
        if not named and scripts[0]:
            named = [(h.start, h.value) for h in self.tables.english_typos["season"].hits(text)]  # "in octobr"
        if correction_end is not None and any(start >= correction_end for start, _ in named):
            named = [n for n in named if n[0] >= correction_end]  # "in November, but it got moved to December"
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
