"""What the bot says, in Korean and English: the understood summary, follow-up questions,
recommendation lines with reasons, and the small-talk answers.

Only wording lives here. Slot names, labels, codes and product names come from
recommender.schema (the contract), so a label changes in one place only.
"""

from __future__ import annotations

from collections.abc import Sequence

from recommender import schema

KO = "ko"
EN = "en"


def _pick(language: str, ko: str, en: str) -> str:
    return ko if language == KO else en


# --------------------------------------------------------------------------- amounts


def format_won(amount: float, language: str) -> str:
    """300000 -> '30만원' / '300,000 won'; 150000000 -> '1억 5,000만원'."""
    won = int(amount)
    if language != KO:
        return f"{won:,} won"
    if won >= 100_000_000 and won % 10_000 == 0:
        eok, man = divmod(won // 10_000, 10_000)
        return f"{eok:,}억 {man:,}만원" if man else f"{eok:,}억원"
    if won >= 10_000 and won % 10_000 == 0:
        return f"{won // 10_000:,}만원"
    return f"{won:,}원"


# --------------------------------------------------------------------------- understood


_EN_PERSON = {1: ("woman", "her"), 2: ("man", "his"), 0: ("someone", "their")}
_EN_CHILD = {1: "girl", 2: "boy", 0: "child"}


def _age_ko(age: int) -> str:
    # The vectorizer encodes "30대" as 35, "30대 초반" as 32 and "30대 후반" as 38 (contract):
    # say it back the way the customer said it.
    if age >= 10 and age % 10 in (2, 5, 8):
        decade = age - age % 10
        return f"{decade}대" + {2: " 초반", 5: "", 8: " 후반"}[age % 10]
    return f"{age}세"


def _person_en(age: int, gender: int) -> str:
    noun, pronoun = _EN_PERSON[gender]
    if not age:
        return {1: "a woman", 2: "a man"}.get(gender, "")
    if age < 13:
        return f"a {age}-year-old {_EN_CHILD[gender]}"
    if age >= 10 and age % 10 in (2, 5, 8):
        decade = age - age % 10
        when = {2: "early ", 5: "", 8: "late "}[age % 10]
        if decade == 10:
            return {1: "a teenage girl", 2: "a teenage boy"}.get(gender, "a teenager")
        return f"{'a' if gender else ''} {noun} in {pronoun} {when}{decade}s".strip()
    return f"a {age}-year-old {noun if gender else 'person'}"


def describe(features: Sequence[float], language: str) -> str:
    """What the bot understood, in words: '30대 여성, 운동용, 예산 30만원' /
    'a woman in her 30s, fitness, budget 300,000 won'. Empty when nothing is known."""
    age, gender, budget, interest, purpose, season = (int(v) for v in features)
    parts: list[str] = []
    if language == KO:
        person = " ".join(p for p in (_age_ko(age) if age else "",
                                      schema.code_label("gender", gender, KO)) if p)
        if person:
            parts.append(person)
        if purpose:
            parts.append(schema.code_label("purpose", purpose, KO))
        if interest:
            parts.append(schema.code_label("interest", interest, KO) + "용")
        if budget:
            parts.append(f"예산 {format_won(budget, KO)}")
        if season:
            parts.append(f"{schema.code_label('season', season, KO)} 구매")
    else:
        person = _person_en(age, gender)
        if person:
            parts.append(person)
        if purpose:
            parts.append({1: "for yourself", 2: "a gift"}[purpose])
        if interest:
            parts.append(schema.code_label("interest", interest, EN))
        if budget:
            parts.append(f"budget {format_won(budget, EN)}")
        if season:
            parts.append(f"buying in {schema.code_label('season', season, EN)}")
    return ", ".join(parts)


def understood(features: Sequence[float], language: str) -> str:
    summary = describe(features, language)
    if not summary:
        return ""
    return _pick(language, f"지금까지 이해한 내용: {summary}.", f"So far I understand: {summary}.")


# --------------------------------------------------------------------------- questions


def question(slot_name: str, language: str, purpose: int) -> str:
    """The one follow-up question for a missing slot. Age and gender questions are about
    the product's user: the recipient when it is a gift."""
    gift = purpose == 2
    if slot_name == "interest":
        return _pick(language,
                     "어떤 용도로 쓰실 건가요? 예를 들어 운동, 음악, 게임, 업무·공부, 요리처럼 말씀해 주세요.",
                     "What will it be used for? For example fitness, music, gaming, work or cooking.")
    if slot_name == "budget":
        return _pick(language, "예산은 어느 정도 생각하세요? (예: 30만원)",
                     "What is your budget? (for example 300,000 won)")
    if slot_name == "purpose":
        return _pick(language, "직접 쓰실 건가요, 아니면 선물하실 건가요?",
                     "Is it for yourself or a gift for someone?")
    if slot_name == "age":
        if gift:
            return _pick(language, "받으실 분은 나이가 어떻게 되세요?",
                         "How old is the person you are buying for?")
        return _pick(language, "연령대가 어떻게 되세요?", "How old are you, roughly?")
    if slot_name == "gender":
        if gift:
            return _pick(language, "받으실 분은 남성인가요, 여성인가요?",
                         "Is the gift for a man or a woman?")
        return _pick(language, "남성분이세요, 여성분이세요?", "Are you a man or a woman?")
    if slot_name == "season":
        return _pick(language, "언제쯤 구매하실 예정인가요? (계절이나 기념일)",
                     "When are you buying it? (a season or an occasion)")
    raise KeyError(slot_name)


# --------------------------------------------------------------------------- recommendations


# Gifts for people 55+ lean to the massager and the e-reader (contract, purchase rules).
_OLDER_GIFT_INTERESTS = frozenset(c.value for c in schema.INTERESTS if c.key in ("reading", "health_relax"))


def reason(product: schema.Product | None, features: Sequence[float], language: str) -> str:
    """A short reason for one recommended product, tied to what the customer said."""
    if product is None:
        return _pick(language, "비슷한 고객이 많이 골랐어요", "popular with similar customers")
    age, _gender, budget, interest, purpose, _season = (int(v) for v in features)
    reasons: list[str] = []
    if interest and product.primary_interest == interest:
        label_ko = schema.code_label("interest", interest, KO)
        label_en = schema.code_label("interest", interest, EN)
        reasons.append(_pick(language, f"{label_ko}용으로 딱 맞아요", f"made for {label_en}"))
    if budget and product.price_krw:
        if product.price_krw <= budget:
            reasons.append(_pick(language, f"예산 {format_won(budget, KO)} 안에 들어와요",
                                 f"fits your {format_won(budget, EN)} budget"))
        elif product.price_krw <= budget * 1.25:
            reasons.append(_pick(
                language,
                f"보통 {format_won(product.price_krw, KO)} 정도라 예산보다 조금 높아요",
                f"usually about {format_won(product.price_krw, EN)}, a bit above your budget"))
        else:
            reasons.append(_pick(
                language,
                f"보통 {format_won(product.price_krw, KO)} 정도라 예산을 넘어요",
                f"usually about {format_won(product.price_krw, EN)}, above your budget"))
    if len(reasons) < 2 and purpose == 2:
        if age >= 55 and product.primary_interest in _OLDER_GIFT_INTERESTS:
            reasons.append(_pick(language, "어른께 드리는 선물로 인기가 많아요", "a popular gift for older relatives"))
        else:
            reasons.append(_pick(language, "선물로 인기가 많아요", "a popular gift"))
    if not reasons:
        reasons.append(_pick(language, "비슷한 고객이 많이 골랐어요", "popular with similar customers"))
    return _pick(language, ", ".join(reasons[:2]), "; ".join(reasons[:2]))


def recommendation_header(language: str) -> str:
    return _pick(language, "추천 상품:", "My recommendations:")


def recommendation_line(rank: int, name: str, score: float, why: str, language: str) -> str:
    return f"{rank}. {name} ({score:.0%}) - {why}"


# --------------------------------------------------------------------------- small talk


def greeting(language: str) -> str:
    return _pick(language, "안녕하세요! 원하시는 상품을 찾아 드릴게요.",
                 "Hello! I can help you find the right product.")


def happy_to_help(language: str) -> str:
    return _pick(language, "좋아요, 딱 맞는 상품을 같이 찾아볼게요.", "Happy to help you find something.")


def thanks(language: str) -> str:
    return _pick(language, "천만에요! 더 필요하신 게 있으면 언제든 말씀해 주세요.",
                 "You're welcome! Tell me if there is anything else you need.")


def reset_done(language: str) -> str:
    return _pick(language, "좋아요, 처음부터 다시 시작할게요.", "Sure, let's start over.")


def off_topic(language: str) -> str:
    return _pick(language, "죄송하지만 그 질문은 도와드리기 어려워요. 저는 상품 추천을 도와드리고 있어요.",
                 "Sorry, I can't help with that. I'm here to help you choose a product.")


def unclear(language: str) -> str:
    return _pick(language, "죄송해요, 잘 이해하지 못했어요.", "Sorry, I didn't quite catch that.")


def no_preference(language: str) -> str:
    return _pick(language, "알겠어요, 그 부분은 빼고 찾아볼게요.", "No problem, I'll leave that out.")


def anything_else(language: str) -> str:
    return _pick(language, "조건을 더 말씀해 주시면 추천을 다시 맞춰 드릴게요.",
                 "Tell me more and I'll refine the recommendations.")


def need_more(language: str) -> str:
    return _pick(language, "어떤 상품을 찾으시는지 조금 더 알려 주세요.",
                 "Tell me a little more about what you are looking for.")
