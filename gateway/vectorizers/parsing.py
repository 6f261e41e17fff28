"""Strict parsing of untrusted model output into a contract-valid vector.

A language model's answer is treated like any other untrusted input: it must be exactly one
JSON object with the 6 slot keys (or a JSON array of 6 numbers), every value a plain number,
and the vector must pass recommender.schema.validate_features. Nothing is clamped, rounded
or guessed: an age of 140 or a budget of 1e12 is rejected, not cut to the maximum, because a
wrong vector silently produces wrong recommendations while a rejection can fall back.

The one tolerance: a single markdown code fence around the JSON (```json ... ```), which
models add habitually; it changes no value.
"""

from __future__ import annotations

import json
import re
from typing import Any

from gateway.vectorizers.base import InvalidModelOutput
from recommender import schema

# A vector answer is ~100 characters; anything much longer is not one.
MAX_OUTPUT_CHARS = 2000

_FENCE = re.compile(r"\A```(?:json|JSON)?[ \t]*\n?(?P<body>.*?)\n?[ \t]*```\Z", re.DOTALL)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key[:20]!r}")
        result[key] = value
    return result


def _number(value: Any, where: str) -> float:
    # bool is an int subclass in Python; JSON true/false are not numbers.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidModelOutput(f"model output {where} must be a JSON number, got {type(value).__name__}")
    try:
        return float(value)
    except OverflowError as exc:  # an integer literal too large for a float
        raise InvalidModelOutput(f"model output {where} is out of range") from exc


def parse_vector_value(value: Any) -> tuple[float, ...]:
    """Vector from an already-decoded JSON value (a tool-use input, a flow output document)."""
    if isinstance(value, dict):
        keys = set(value)
        missing = [name for name in schema.SLOT_NAMES if name not in keys]
        # Key names are model output: shortened, so logs and error messages stay small.
        extra = sorted(repr(str(k)[:20]) for k in keys - set(schema.SLOT_NAMES))
        if missing or extra:
            problems = []
            if missing:
                problems.append(f"missing {', '.join(missing)}")
            if extra:
                problems.append(f"unexpected keys {', '.join(extra[:6])}")
            raise InvalidModelOutput(
                f"model output must have exactly the keys {', '.join(schema.SLOT_NAMES)}: {'; '.join(problems)}"
            )
        numbers = [_number(value[name], name) for name in schema.SLOT_NAMES]
    elif isinstance(value, list):
        if len(value) != schema.FEATURE_COUNT:
            raise InvalidModelOutput(
                f"model output array must have exactly {schema.FEATURE_COUNT} numbers, got {len(value)}"
            )
        numbers = [_number(v, f"[{i}]") for i, v in enumerate(value)]
    else:
        raise InvalidModelOutput(f"model output must be a JSON object or array, got {type(value).__name__}")
    try:
        return schema.validate_features(numbers, prefix="model output")
    except schema.InvalidFeatures as exc:
        raise InvalidModelOutput(str(exc)) from exc


def parse_model_text(text: Any) -> tuple[float, ...]:
    """Vector from a model's text answer: exactly one JSON object/array, nothing around it."""
    if not isinstance(text, str):
        raise InvalidModelOutput(f"model output must be text, got {type(text).__name__}")
    body = text.strip()
    if not body:
        raise InvalidModelOutput("model output is empty")
    if len(body) > MAX_OUTPUT_CHARS:
        raise InvalidModelOutput(f"model output is {len(body)} characters, too long to be a vector")
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group("body").strip()
    if not body.startswith(("{", "[")):
        raise InvalidModelOutput("model output is not a JSON object (it starts with text)")
    try:
        # json.loads rejects trailing data, so two objects or JSON followed by prose fail here.
        value = json.loads(body, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as exc:
        raise InvalidModelOutput(f"model output is not exactly one JSON value: {exc}") from exc
    return parse_vector_value(value)
