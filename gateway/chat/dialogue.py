"""One turn of the recommendation chat: read the text, merge it into what the customer said
before, recommend when enough is known, and ask one question for the most useful missing slot.

The server keeps no session. Everything the conversation has established travels in the
ConversationState that the client sends back with each turn, so any gateway replica can
answer any turn and ChatEngine itself is stateless (safe to share between threads).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway import conversions
from gateway.chat import intents, replies
from gateway.vectorizers import base
from recommender import schema
from recommender.errors import InvalidArgument
from recommender.text import detect_language, has_letters
from recommender.v1 import chat_pb2, common_pb2, recommend_pb2

log = logging.getLogger(__name__)

# Called with (merged features, top_k) and returns the model's ranking; in the gateway it
# forwards to the inference server.
RecommendFn = Callable[[tuple[float, ...], int], recommend_pb2.RecommendResponse]

# Which missing slot is most worth a question: what it is for decides the product family,
# the budget rules out most of the rest, then who it is for and who uses it.
FOLLOW_UP_ORDER: tuple[str, ...] = ("interest", "budget", "purpose", "age", "gender", "season")

# Recommendations start once the customer named a use or a budget: before that the
# model would only return the overall best sellers.
RECOMMEND_AFTER: tuple[str, ...] = ("interest", "budget")



def turn_language(text: str, vectorized: str, previous: str) -> str:
    """The language to answer in: the current turn's (recommender.text.detect_language, the one
    detector every part uses). A turn without letters ("30만원" is not, "300000" is) keeps the
    conversation's language."""
    if not has_letters(text) and previous in (replies.KO, replies.EN):
        return previous
    detected = detect_language(text)
    if detected in (replies.KO, replies.EN):
        return detected
    return replies.KO if vectorized == replies.KO else replies.EN


# The opening words of a turn that stated no slot, by what the customer said instead.
_SMALL_TALK = {
    intents.Intent.GREETING: replies.greeting,
    intents.Intent.THANKS: replies.thanks,
    intents.Intent.HELP_REQUEST: replies.happy_to_help,
    intents.Intent.NO_PREFERENCE: replies.no_preference,
    intents.Intent.OFF_TOPIC: replies.off_topic,
    intents.Intent.NONE: replies.unclear,
}


def merge(previous: Sequence[float], stated: Sequence[float], purpose_stated: bool = True) -> tuple[float, ...]:
    """A newly stated slot (non-zero) replaces the old value; unstated slots keep theirs.

    Age and gender describe the person who will use the product. When the purpose flips
    between own use and a gift ("actually it's for me"), that person changed, so what was
    said about the previous one is dropped unless this turn restates it.

    `purpose_stated` False (VectorizeResult.purpose_stated): the turn's purpose was only
    inferred from a bare self-description ("50대", "hiking"); a conversation that already has a
    purpose keeps it, and the turn's age and gender describe that conversation's user."""
    if not purpose_stated and previous[schema.PURPOSE]:
        stated = tuple(0.0 if i == schema.PURPOSE else v for i, v in enumerate(stated))
    merged = [float(new) if new else float(old) for old, new in zip(previous, stated, strict=True)]
    old_purpose, new_purpose = previous[schema.PURPOSE], stated[schema.PURPOSE]
    if old_purpose and new_purpose and old_purpose != new_purpose:
        for slot in (schema.AGE, schema.GENDER):
            merged[slot] = float(stated[slot])
    return tuple(merged)


def state_features(state: chat_pb2.ConversationState) -> tuple[float, ...]:
    """The merged vector carried in the state (all zeros on the first turn).

    The state comes back from the client, so it is checked like any other input."""
    if len(state.features) == 0:
        return (0.0,) * schema.FEATURE_COUNT
    return schema.validate_features(state.features, prefix="state.features")


def next_follow_up(features: Sequence[float], asked: set[str]) -> str | None:
    """The most useful slot that is still unknown and was never asked about."""
    for name in FOLLOW_UP_ORDER:
        if not features[schema.SLOT_BY_NAME[name].index] and name not in asked:
            return name
    return None


def ready_to_recommend(features: Sequence[float]) -> bool:
    return any(features[schema.SLOT_BY_NAME[name].index] for name in RECOMMEND_AFTER)


# The turn counter travels in the state as int32 and is incremented each turn.
MAX_TURN = 2**31 - 2
LANGUAGES = ("", replies.KO, replies.EN)


def validate_state(state: chat_pb2.ConversationState) -> None:
    """A state the client sent back must be one this server could have produced: each
    problem is INVALID_ARGUMENT naming the field (state.turn, state.asked[i], ...)."""
    if not 0 <= state.turn <= MAX_TURN:
        raise InvalidArgument(f"state.turn must be between 0 and {MAX_TURN} (send back the state "
                              f"you received), got {state.turn}", field="state.turn")
    for index, slot in enumerate(state.asked):
        if slot not in _SLOT_VALUES:
            raise InvalidArgument(f"state.asked[{index}] must be a Slot value (1-{len(schema.SLOTS)}), "
                                  f"got {slot}", field=f"state.asked[{index}]")
    if state.language not in LANGUAGES:
        raise InvalidArgument(f"state.language must be \"ko\", \"en\" or empty, got {state.language[:20]!r}",
                              field="state.language")


_SLOT_VALUES = frozenset(common_pb2.Slot.values())


@dataclass
class TurnPlan:
    """What the first half of a turn understood (ChatEngine.understand), for the second."""

    request: chat_pb2.ChatRequest
    result: base.VectorizeResult
    stated: tuple[float, ...]
    language: str
    intent: intents.Intent
    features: tuple[float, ...]
    asked: set[str]
    parts: list[str]
    wants_scores: bool


class ChatEngine:
    """Answers one ChatRequest at a time. `vectorizer` follows gateway.vectorizers.base.Vectorizer."""

    def __init__(self, vectorizer: base.Vectorizer, catalog: schema.Catalog = schema.DEFAULT_CATALOG):
        self.vectorizer = vectorizer
        # Used for reasons only (primary interest, typical price); the ranking and product
        # ids come from the model version that answers `recommend`.
        self.catalog = catalog

    def turn(self, request: chat_pb2.ChatRequest, recommend: RecommendFn) -> chat_pb2.ChatResponse:
        """Answer one turn (plain synchronous form of understand -> score -> answer).

        Raises schema.InvalidText for bad text, InvalidArgument naming the field for a state
        that breaks the contract, base.VectorizerUnavailable when the text cannot be read;
        errors of `recommend` propagate unchanged."""
        plan = self.understand(request)
        response = recommend(plan.features, request.top_k) if plan.wants_scores else None
        return self.answer(plan, response)

    def understand(self, request: chat_pb2.ChatRequest) -> TurnPlan:
        """The first half of a turn: read the text and merge it into the state. No I/O but the
        vectorizer's; the gateway scores `plan.features` when `plan.wants_scores`, on its
        event loop, then calls `answer`."""
        text = schema.validate_text(request.text)
        schema.resolve_top_k(request.top_k)
        validate_state(request.state)
        previous = state_features(request.state)
        asked = {schema.SLOTS[conversions.slot_index(s)].name for s in request.state.asked
                 if s != common_pb2.SLOT_UNSPECIFIED}

        result = self.vectorizer.vectorize(text)
        stated = tuple(float(v) for v in result.features)
        language = turn_language(text, result.language, request.state.language)
        intent = intents.classify(text)
        said_something = any(stated)
        if intent is intents.Intent.NO_PREFERENCE and not asked:
            # "no idea what to get" before any question is a request for help, not an answer.
            intent = intents.Intent.HELP_REQUEST

        parts: list[str] = []
        if intent is intents.Intent.RESET:
            previous, asked = (0.0,) * schema.FEATURE_COUNT, set()
            parts.append(replies.reset_done(language))
        features = merge(previous, stated, result.purpose_stated)

        # Small talk decides the opening words; the slots in the same message still count.
        if not said_something:
            opener = _SMALL_TALK.get(intent)
            if opener is not None:
                parts.append(opener(language))
        elif intent is intents.Intent.GREETING:
            parts.append(replies.greeting(language))

        if said_something:
            parts.append(replies.understood(features, language))

        # Recommend when this turn told us something (or skipped a question) and a use or
        # budget is known; "thanks" or off-topic text just gets a polite answer.
        answered = said_something or intent is intents.Intent.NO_PREFERENCE
        return TurnPlan(request=request, result=result, stated=stated, language=language, intent=intent,
                        features=features, asked=asked, parts=parts,
                        wants_scores=answered and ready_to_recommend(features))

    def answer(self, plan: TurnPlan, response: recommend_pb2.RecommendResponse | None) -> chat_pb2.ChatResponse:
        """The second half of a turn: the reply, from the plan and the scores (None when the
        plan did not want any)."""
        request, features, asked, language, intent = (
            plan.request, plan.features, set(plan.asked), plan.language, plan.intent)
        parts = list(plan.parts)
        said_something = any(plan.stated)
        items: list[common_pb2.RecommendedItem] = []
        model_version = 0
        if response is not None:
            model_version = response.model_version
            items = list(response.items)
            if items:
                parts.append(self._recommendation_text(items, features, language))

        follow_up = None
        # After thanks the customer is done: do not push another question on them.
        if intent is not intents.Intent.THANKS or said_something:
            follow_up = next_follow_up(features, asked)
        if follow_up:
            parts.append(replies.question(follow_up, language, int(features[schema.PURPOSE])))
            asked.add(follow_up)
        elif items:
            parts.append(replies.anything_else(language))
        elif not said_something and intent is not intents.Intent.THANKS and not ready_to_recommend(features):
            parts.append(replies.need_more(language))

        state = chat_pb2.ConversationState(
            features=features,
            # Contract order keeps the state stable and easy to read.
            asked=[conversions.slot_enum(schema.SLOT_BY_NAME[name].index)
                   for name in schema.SLOT_NAMES if name in asked],
            turn=request.state.turn + 1,
            language=language,
        )
        log.debug("chat turn=%d language=%s intent=%s stated=%d follow_up=%s items=%d",
                  state.turn, language, intent.value, sum(1 for v in plan.stated if v),
                  follow_up or "-", len(items))
        return chat_pb2.ChatResponse(
            reply="\n".join(p for p in parts if p),
            state=state,
            items=items,
            understood=conversions.slots_from_features(features),
            follow_up=(conversions.slot_enum(schema.SLOT_BY_NAME[follow_up].index)
                       if follow_up else common_pb2.SLOT_UNSPECIFIED),
            model_version=model_version,
            vectorizer=conversions.vectorizer_enum(plan.result.vectorizer),
        )

    def _recommendation_text(self, items: Sequence[common_pb2.RecommendedItem],
                             features: Sequence[float], language: str) -> str:
        lines = [replies.recommendation_header(language)]
        for position, item in enumerate(items, start=1):
            try:
                product = self.catalog[self.catalog.index_of(item.product_id)]
            except KeyError:  # a model version with its own catalog: no price/interest facts
                product = None
            name = (item.name_ko if language == replies.KO else item.name) or item.name or item.product_id
            lines.append(replies.recommendation_line(item.rank or position, name, item.score,
                                                     replies.reason(product, features, language),
                                                     language))
        return "\n".join(lines)
