"""The one place where plain-Python values of the gateway become protobuf types and back:
feature tuples <-> CustomerSlots, vectorizer names <-> the Vectorizer enum, slot indices <->
the Slot enum. Servicers, the chat package and clients import these instead of re-mapping."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.vectorizers import base
from recommender import schema
from recommender.v1 import common_pb2

VECTORIZER_ENUM: dict[str, int] = {
    base.LOCAL: common_pb2.VECTORIZER_LOCAL,
    base.BEDROCK_FLOW: common_pb2.VECTORIZER_BEDROCK_FLOW,
    base.BEDROCK_CONVERSE: common_pb2.VECTORIZER_BEDROCK_CONVERSE,
    base.CACHE: common_pb2.VECTORIZER_CACHE,
}
VECTORIZER_NAME: dict[int, str] = {value: name for name, value in VECTORIZER_ENUM.items()}


def vectorizer_enum(name: str | None) -> int:
    """recommender.v1.Vectorizer value of a vectorizer name ('' / None / unknown -> UNSPECIFIED)."""
    return VECTORIZER_ENUM.get(name or "", common_pb2.VECTORIZER_UNSPECIFIED)


def slot_enum(index: int) -> int:
    """recommender.v1.Slot value of a vector position (the enum is the position + 1)."""
    return common_pb2.Slot.Value(f"SLOT_{schema.SLOTS[index].name.upper()}")


def slot_index(slot: int) -> int:
    """Vector position of a recommender.v1.Slot value (inverse of slot_enum)."""
    name = common_pb2.Slot.Name(slot).removeprefix("SLOT_").lower()
    return schema.SLOT_BY_NAME[name].index


def slots_from_features(features: Sequence[float]) -> common_pb2.CustomerSlots:
    """Named, typed slots of a contract-valid vector (enum values equal the vector codes)."""
    values = [float(v) for v in features]
    return common_pb2.CustomerSlots(
        age=int(values[schema.AGE]),
        gender=int(values[schema.GENDER]),
        budget=int(values[schema.BUDGET]),
        interest=int(values[schema.INTEREST]),
        purpose=int(values[schema.PURPOSE]),
        season=int(values[schema.SEASON]),
    )


def features_from_slots(slots: common_pb2.CustomerSlots) -> tuple[float, ...]:
    """The vector of named slots, in contract order."""
    return (
        float(slots.age), float(slots.gender), float(slots.budget),
        float(slots.interest), float(slots.purpose), float(slots.season),
    )


def unstated_slot_enums(features: Sequence[float]) -> list[int]:
    """Slot enum values of the positions that are 0 ("not stated"), in contract order."""
    return [slot_enum(i) for i, value in enumerate(features) if float(value) == 0.0]
