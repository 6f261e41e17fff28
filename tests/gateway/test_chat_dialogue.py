"""ChatEngine turn logic: merging, follow-up choice, never re-asking, reset, small talk,
language, reasons, and when recommendations appear.

Two test doubles of EXTERNAL dependencies are used: a scripted vectorizer (the text reader
is another component; scripting it isolates the dialogue rules from its parsing) and a fake
`recommend` callable standing in for the remote model. The multi-turn conversations at the
end run through the real LocalVectorizer.
"""

from __future__ import annotations

import pytest

from gateway.chat import intents, replies
from gateway.chat.dialogue import ChatEngine, merge, next_follow_up
from gateway.vectorizers import base
from recommender import schema
from recommender.v1 import chat_pb2, common_pb2, recommend_pb2

ZERO = (0.0,) * 6


def vec(age=0, gender=0, budget=0, interest=0, purpose=0, season=0) -> tuple[float, ...]:
    return (float(age), float(gender), float(budget), float(interest), float(purpose), float(season))


class ScriptedVectorizer:
    """Answers fixed vectors for known texts, zeros for anything else."""

    name = base.LOCAL

    def __init__(self, script: dict[str, tuple[tuple[float, ...], str]]):
        self.script = script
        self.calls: list[str] = []

    def vectorize(self, text: str) -> base.VectorizeResult:
        self.calls.append(text)
        features, language = self.script.get(text, (ZERO, "ko" if any("가" <= c <= "힣" for c in text) else "en"))
        return base.VectorizeResult(features=features, vectorizer=base.LOCAL, language=language)


class FakeModel:
    """Stands in for the inference server: ranks the interest's product first, then the rest
    by price ascending, and records what it was asked."""

    def __init__(self):
        self.calls: list[tuple[tuple[float, ...], int]] = []

    def __call__(self, features, top_k):
        self.calls.append((tuple(features), top_k))
        k = schema.resolve_top_k(top_k)
        interest = int(features[schema.INTEREST])
        ranked = sorted(schema.DEFAULT_CATALOG, key=lambda p: (p.primary_interest != interest, p.price_krw))
        items = [
            common_pb2.RecommendedItem(product_id=p.product_id, name=p.name_en, name_ko=p.name_ko,
                                       score=round(0.6 / (rank + 1), 3), rank=rank + 1)
            for rank, p in enumerate(ranked[:k])
        ]
        return recommend_pb2.RecommendResponse(items=items, model_version=7, features=features)


def chat(engine, model, text, state=None, top_k=0):
    request = chat_pb2.ChatRequest(text=text, state=state or chat_pb2.ConversationState(), top_k=top_k)
    return engine.turn(request, model)


def asked_names(state) -> set[str]:
    return {common_pb2.Slot.Name(s).removeprefix("SLOT_").lower() for s in state.asked}


# --------------------------------------------------------------------------- pure helpers


def test_merge_replaces_stated_and_keeps_unstated():
    assert merge(vec(35, 1, 300_000, 2, 2, 0), vec(0, 0, 500_000, 0, 0, 4)) == vec(35, 1, 500_000, 2, 2, 4)


def test_merge_forgets_the_old_user_when_purpose_flips():
    # "a gift for my mom in her 50s" then "actually it's for me": age and gender were mom's.
    assert merge(vec(55, 1, 300_000, 10, 2, 0), vec(0, 0, 0, 0, 1, 0)) == vec(0, 0, 300_000, 10, 1, 0)
    # ... unless the same turn restates them.
    assert merge(vec(55, 1, 300_000, 10, 2, 0), vec(35, 2, 0, 0, 1, 0)) == vec(35, 2, 300_000, 10, 1, 0)
    # Same purpose again: nothing is dropped.
    assert merge(vec(55, 1, 0, 0, 2, 0), vec(0, 0, 0, 0, 2, 0)) == vec(55, 1, 0, 0, 2, 0)


def test_merge_keeps_an_earlier_purpose_against_an_inferred_one():
    # "엄마 선물" then a bare "50대": the local vectorizer infers own use from a bare
    # self-description, but the customer is answering about mom; only a stated purpose switches.
    gift = vec(0, 1, 300_000, 8, 2, 0)
    assert merge(gift, vec(55, 0, 0, 0, 1, 0), purpose_stated=False) == vec(55, 1, 300_000, 8, 2, 0)
    assert merge(gift, vec(0, 0, 0, 2, 1, 0), purpose_stated=False) == vec(0, 1, 300_000, 2, 2, 0)
    # nothing known yet: an inferred purpose is still the best guess
    assert merge(ZERO, vec(55, 0, 0, 0, 1, 0), purpose_stated=False) == vec(55, 0, 0, 0, 1, 0)
    # a stated one switches, as before
    assert merge(gift, vec(0, 0, 0, 0, 1, 0), purpose_stated=True) == vec(0, 0, 300_000, 8, 1, 0)


def test_follow_up_order_and_skips_known_or_asked():
    assert next_follow_up(ZERO, set()) == "interest"
    assert next_follow_up(vec(interest=2), set()) == "budget"
    assert next_follow_up(vec(interest=2), {"budget"}) == "purpose"
    assert next_follow_up(vec(interest=2, budget=1, purpose=2), set()) == "age"
    assert next_follow_up(vec(30, 1, 1, 2, 2, 1), set()) is None
    assert next_follow_up(ZERO, set(schema.SLOT_NAMES)) is None


@pytest.mark.parametrize("amount, ko, en", [
    (300_000, "30만원", "300,000 won"),
    (1_500_000, "150만원", "1,500,000 won"),
    (150_000_000, "1억 5,000만원", "150,000,000 won"),
    (5_500, "5,500원", "5,500 won"),
])
def test_format_won(amount, ko, en):
    assert replies.format_won(amount, "ko") == ko
    assert replies.format_won(amount, "en") == en


def test_describe_in_words():
    features = vec(35, 1, 300_000, 2)
    assert replies.describe(features, "ko") == "30대 여성, 운동용, 예산 30만원"
    assert replies.describe(features, "en") == "a woman in her 30s, fitness, budget 300,000 won"
    assert replies.describe(vec(32, 2), "ko") == "30대 초반 남성"
    assert replies.describe(vec(38, 2), "en") == "a man in his late 30s"
    assert replies.describe(vec(24, 0, 0, 0, 2, 4), "en") == "a 24-year-old person, a gift, buying in winter"
    assert replies.describe(ZERO, "ko") == ""


@pytest.mark.parametrize("text, intent", [
    ("안녕하세요", intents.Intent.GREETING),
    ("hello there", intents.Intent.GREETING),
    ("감사합니다!", intents.Intent.THANKS),
    ("thanks a lot", intents.Intent.THANKS),
    ("처음부터 다시 할게요", intents.Intent.RESET),
    ("let's start over", intents.Intent.RESET),
    ("오늘 날씨 어때?", intents.Intent.OFF_TOPIC),
    ("tell me a joke", intents.Intent.OFF_TOPIC),
    ("잘 모르겠어요", intents.Intent.NO_PREFERENCE),
    ("What do you recommend?", intents.Intent.HELP_REQUEST),
    ("뭐 추천해줄 수 있어요?", intents.Intent.HELP_REQUEST),
    ("하이킹 좋아해요", intents.Intent.NONE),
    ("this hint is useful", intents.Intent.NONE),
])
def test_intents(text, intent):
    assert intents.classify(text) is intent


# --------------------------------------------------------------------------- engine turns


@pytest.fixture
def model():
    return FakeModel()


def test_first_turn_with_nothing_known_asks_what_it_is_for(model):
    engine = ChatEngine(ScriptedVectorizer({"선물 추천해줘": (vec(purpose=2), "ko")}))
    reply = chat(engine, model, "선물 추천해줘")
    assert reply.follow_up == common_pb2.SLOT_INTEREST
    assert "용도" in reply.reply
    assert not reply.items and model.calls == []  # nothing to recommend on yet
    assert reply.state.turn == 1 and reply.state.language == "ko"
    assert list(reply.state.features) == list(vec(purpose=2))
    assert asked_names(reply.state) == {"interest"}
    assert reply.understood.purpose == common_pb2.PURPOSE_GIFT
    assert reply.vectorizer == common_pb2.VECTORIZER_LOCAL
    assert reply.model_version == 0


def test_recommends_once_interest_known_with_reasons(model):
    engine = ChatEngine(ScriptedVectorizer({"30대 여성 운동용, 30만원": (vec(35, 1, 300_000, 2), "ko")}))
    reply = chat(engine, model, "30대 여성 운동용, 30만원", top_k=2)
    assert model.calls == [(vec(35, 1, 300_000, 2), 2)]
    assert [i.product_id for i in reply.items] == ["smartwatch", "airfryer"]
    assert reply.model_version == 7
    assert "30대 여성, 운동용, 예산 30만원" in reply.reply
    assert "1. 스마트워치" in reply.reply
    assert "운동용으로 딱 맞아요" in reply.reply
    # Smartwatch's typical price is 350,000: the reason says it is above the budget.
    assert "예산보다 조금 높아요" in reply.reply
    assert reply.follow_up == common_pb2.SLOT_PURPOSE  # interest and budget known


def test_budget_alone_is_enough_to_recommend(model):
    engine = ChatEngine(ScriptedVectorizer({"under 200,000 won": (vec(budget=200_000), "en")}))
    reply = chat(engine, model, "under 200,000 won")
    assert reply.items and model.calls
    assert "fits your 200,000 won budget" in reply.reply
    assert reply.follow_up == common_pb2.SLOT_INTEREST


def test_multi_turn_merge_and_never_reask(model):
    script = {
        "gift for my mom": (vec(gender=1, purpose=2), "en"),
        "she likes hiking": (vec(interest=2), "en"),
        "no idea": (ZERO, "en"),
        "she's in her 50s": (vec(age=55), "en"),
        "actually it's for me": (vec(purpose=1), "en"),
    }
    engine = ChatEngine(ScriptedVectorizer(script))
    r1 = chat(engine, model, "gift for my mom")
    assert r1.follow_up == common_pb2.SLOT_INTEREST and not r1.items
    r2 = chat(engine, model, "she likes hiking", r1.state)
    assert list(r2.state.features) == list(vec(gender=1, interest=2, purpose=2))
    assert r2.items and r2.follow_up == common_pb2.SLOT_BUDGET
    # The customer does not answer the budget question: it is never asked again.
    r3 = chat(engine, model, "no idea", r2.state)
    assert r3.follow_up == common_pb2.SLOT_AGE  # purpose known (gift) -> the recipient's age
    assert "person you are buying for" in r3.reply
    assert "leave that out" in r3.reply
    assert r3.items  # skipping a question still shows what is known so far
    r4 = chat(engine, model, "she's in her 50s", r3.state)
    assert list(r4.state.features) == list(vec(55, 1, 0, 2, 2))
    assert r4.follow_up == common_pb2.SLOT_SEASON  # gender already known, budget already asked
    r5 = chat(engine, model, "actually it's for me", r4.state)
    assert r5.state.features[schema.PURPOSE] == 1
    assert r5.state.features[schema.INTEREST] == 2  # unstated slots keep earlier values
    # Age and gender were mom's: the product's user changed, so they are dropped. Age was
    # asked once already (never again); gender was never asked, so that is the question.
    assert r5.state.features[schema.AGE] == 0 and r5.state.features[schema.GENDER] == 0
    assert r5.follow_up == common_pb2.SLOT_GENDER
    assert asked_names(r5.state) == {"interest", "budget", "age", "season", "gender"}
    assert r5.state.turn == 5
    asked_over_time = [r.follow_up for r in (r1, r2, r3, r4, r5) if r.follow_up]
    assert len(asked_over_time) == len(set(asked_over_time))


def test_reset_clears_state(model):
    script = {"게임용 50만원": (vec(budget=500_000, interest=5), "ko")}
    engine = ChatEngine(ScriptedVectorizer(script))
    r1 = chat(engine, model, "게임용 50만원")
    r2 = chat(engine, model, "처음부터 다시", r1.state)
    assert list(r2.state.features) == list(ZERO)
    assert asked_names(r2.state) == {"interest"}  # the fresh conversation's first question
    assert r2.follow_up == common_pb2.SLOT_INTEREST
    assert not r2.items
    assert "처음부터" in r2.reply


def test_reset_with_new_details_keeps_only_the_new_ones(model):
    script = {"게임용 50만원": (vec(budget=500_000, interest=5), "ko"),
              "start over, I need earbuds": (vec(interest=1, purpose=1), "en")}
    engine = ChatEngine(ScriptedVectorizer(script))
    r1 = chat(engine, model, "게임용 50만원")
    r2 = chat(engine, model, "start over, I need earbuds", r1.state)
    assert list(r2.state.features) == list(vec(interest=1, purpose=1))
    assert r2.follow_up == common_pb2.SLOT_BUDGET  # asked before the reset, but that was forgotten
    assert r2.items[0].product_id == "earbuds"


def test_greeting_thanks_and_off_topic_are_polite(model):
    engine = ChatEngine(ScriptedVectorizer({"running shoes? no, a watch for running": (vec(interest=2), "en")}))
    hello = chat(engine, model, "hello")
    assert hello.reply.startswith("Hello!")
    assert hello.follow_up == common_pb2.SLOT_INTEREST
    assert hello.state.language == "en"
    r2 = chat(engine, model, "running shoes? no, a watch for running", hello.state)
    thanks = chat(engine, model, "thank you!", r2.state)
    assert "welcome" in thanks.reply
    assert thanks.follow_up == common_pb2.SLOT_UNSPECIFIED and not thanks.items
    assert list(thanks.state.features) == list(r2.state.features)
    weather = chat(engine, model, "what's the weather like?", thanks.state)
    assert "can't help with that" in weather.reply
    assert list(weather.state.features) == list(r2.state.features)
    assert weather.follow_up == common_pb2.SLOT_PURPOSE  # budget was asked after the watch turn
    assert not weather.items


def test_unclear_text_asks_instead_of_guessing(model):
    engine = ChatEngine(ScriptedVectorizer({}))
    reply = chat(engine, model, "음...")
    assert "이해하지 못했어요" in reply.reply
    assert reply.follow_up == common_pb2.SLOT_INTEREST
    assert not model.calls


def test_no_idea_before_any_question_is_a_request_for_help(model):
    engine = ChatEngine(ScriptedVectorizer({}))
    reply = chat(engine, model, "adult, no idea what to get")
    assert "Happy to help" in reply.reply and "leave that out" not in reply.reply
    assert reply.follow_up == common_pb2.SLOT_INTEREST


def test_reply_language_follows_the_current_turn(model):
    script = {"노트북 100만원": (vec(budget=1_000_000, interest=3), "ko"),
              "for my son": (vec(gender=2, purpose=2), "en")}
    engine = ChatEngine(ScriptedVectorizer(script))
    r1 = chat(engine, model, "노트북 100만원")
    assert r1.state.language == "ko" and "예산 100만원" in r1.reply and "노트북" in r1.reply
    r2 = chat(engine, model, "for my son", r1.state)
    assert r2.state.language == "en"
    assert "a man, a gift, work & study, budget 1,000,000 won" in r2.reply
    assert "Laptop" in r2.reply
    r3 = chat(engine, model, "1000000", r2.state)  # no letters: keeps the conversation's language
    assert r3.state.language == "en"


def test_invalid_text_and_state_are_rejected(model):
    engine = ChatEngine(ScriptedVectorizer({}))
    with pytest.raises(schema.InvalidText):
        chat(engine, model, "   ")
    with pytest.raises(schema.InvalidText):
        chat(engine, model, "x" * 2001)
    bad_state = chat_pb2.ConversationState(features=[0, 0, -5, 0, 0, 0])
    with pytest.raises(schema.InvalidFeatures, match="budget"):
        chat(engine, model, "hello", bad_state)


def test_vectorizer_unavailable_propagates(model):
    class Down:
        name = base.BEDROCK_CONVERSE

        def vectorize(self, text):
            raise base.VectorizerUnavailable("throttled")

    with pytest.raises(base.VectorizerUnavailable):
        chat(ChatEngine(Down()), model, "hello")


# --------------------------------------------------------------------------- real LocalVectorizer


@pytest.fixture
def local_engine():
    local = pytest.importorskip("gateway.vectorizers.local")
    return ChatEngine(local.LocalVectorizer())


def test_korean_conversation_with_local_vectorizer(local_engine, model):
    r1 = chat(local_engine, model, "안녕하세요")
    assert r1.state.language == "ko" and r1.reply.startswith("안녕하세요")
    assert r1.follow_up == common_pb2.SLOT_INTEREST and not r1.items
    r2 = chat(local_engine, model, "엄마 선물 찾고 있어요", r1.state)
    assert r2.understood.gender == common_pb2.GENDER_FEMALE
    assert r2.understood.purpose == common_pb2.PURPOSE_GIFT
    assert not r2.items  # no interest, no budget yet
    assert r2.follow_up not in (common_pb2.SLOT_INTEREST, common_pb2.SLOT_PURPOSE)  # asked / known
    r3 = chat(local_engine, model, "허리가 안 좋으셔서 건강에 좋은 걸로, 30만원 이하", r2.state)
    assert r3.understood.interest == common_pb2.INTEREST_HEALTH_RELAX
    assert r3.understood.budget == 300_000
    assert r3.understood.gender == common_pb2.GENDER_FEMALE  # kept from turn 2
    assert r3.items and r3.items[0].product_id == "massager"
    assert "예산 30만원" in r3.reply and "안마기" in r3.reply
    r4 = chat(local_engine, model, "처음부터 다시", r3.state)
    assert list(r4.state.features) == list(ZERO)
    assert not r4.items
    assert r4.state.turn == 4


def test_english_conversation_with_local_vectorizer(local_engine, model):
    r1 = chat(local_engine, model, "hi, I'm looking for a gift")
    assert r1.state.language == "en"
    assert r1.understood.purpose == common_pb2.PURPOSE_GIFT
    assert r1.follow_up == common_pb2.SLOT_INTEREST
    r2 = chat(local_engine, model, "my husband loves gaming", r1.state)
    assert r2.understood.interest == common_pb2.INTEREST_GAMING
    assert r2.understood.gender == common_pb2.GENDER_MALE
    assert r2.items and r2.items[0].product_id == "console"
    assert r2.follow_up == common_pb2.SLOT_BUDGET
    r3 = chat(local_engine, model, "up to 600,000 won", r2.state)
    assert r3.understood.budget == 600_000
    assert "budget 600,000 won" in r3.reply
    r4 = chat(local_engine, model, "actually it's for me", r3.state)
    assert r4.understood.purpose == common_pb2.PURPOSE_SELF
    assert r4.understood.interest == common_pb2.INTEREST_GAMING  # kept
    asked = [r.follow_up for r in (r1, r2, r3, r4) if r.follow_up]
    assert len(asked) == len(set(asked))
    r5 = chat(local_engine, model, "thanks!", r4.state)
    assert "welcome" in r5.reply and r5.follow_up == common_pb2.SLOT_UNSPECIFIED


@pytest.mark.parametrize("turns", [
    [("엄마 선물 찾고 있어요, 요리 좋아하세요", vec(0, 1, 0, 8, 2, 0)),
     ("30만원", vec(0, 1, 300_000, 8, 2, 0)),
     ("50대", vec(55, 1, 300_000, 8, 2, 0)),  # a bare answer about mom, not the speaker
     ("여성", vec(55, 1, 300_000, 8, 2, 0)),
     ("운동", vec(55, 1, 300_000, 2, 2, 0)),
     ("아 사실 제가 쓸 거예요", vec(0, 0, 300_000, 2, 1, 0))],  # stated: the user changed
    [("a gift for my dad, he likes cooking", vec(0, 2, 0, 8, 2, 0)),
     ("300k won", vec(0, 2, 300_000, 8, 2, 0)),
     ("50s", vec(55, 2, 300_000, 8, 2, 0)),
     ("male", vec(55, 2, 300_000, 8, 2, 0)),
     ("hiking", vec(55, 2, 300_000, 2, 2, 0)),
     ("actually it's for me", vec(0, 0, 300_000, 2, 1, 0))],
    [("I need a laptop for my classes", vec(0, 0, 0, 3, 1, 0)),
     ("it's a gift for my son actually", vec(0, 2, 0, 3, 2, 0))],  # own use, then a stated gift
], ids=["ko", "en", "self-then-gift"])
def test_bare_answers_in_a_gift_conversation_describe_the_recipient(local_engine, model, turns):
    state = None
    for text, want in turns:
        reply = chat(local_engine, model, text, state)
        state = reply.state
        assert tuple(state.features) == want, text
