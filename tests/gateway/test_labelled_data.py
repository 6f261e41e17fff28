"""The labelled vectorizer evaluation data in tests/data/labelled/ is well formed.

Checks the data only, never a vectorizer: every line parses, every vector is valid under the
contract (recommender.schema), no text appears twice anywhere, the held-out split is disjoint
from the dev split and big enough, and both splits contain every code of every coded slot (so
a per-slot score on either split measures every class).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from recommender.schema import SLOTS, validate_features, validate_text

DATA = Path(__file__).resolve().parents[1] / "data" / "labelled"
# Held-out sets, once scored and read, join the dev split as dev_heldout<N>.jsonl (see README):
# heldout.jsonl -> dev_heldout1.jsonl, heldout2.jsonl -> dev_heldout2.jsonl. heldout3.jsonl is the
# held-out split now.
HELDOUT1_IN_DEV = "dev_heldout1.jsonl"
DEV_FILES = tuple(sorted(p.name for p in DATA.glob("dev_*.jsonl")))
NEW_FILES = ("dev_new.jsonl", HELDOUT1_IN_DEV)  # written in one batch, split by style
HELDOUT = "heldout3.jsonl"
ALL_FILES = (*DEV_FILES, HELDOUT)
MIN_HELDOUT = 300


def _load(name: str) -> list[dict]:
    rows = []
    with open(DATA / name, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            assert line.strip(), f"{name}:{number} is blank"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                pytest.fail(f"{name}:{number} is not JSON: {exc}")
            row["_where"] = f"{name}:{number}"
            rows.append(row)
    return rows


@pytest.fixture(scope="module")
def files() -> dict[str, list[dict]]:
    return {name: _load(name) for name in ALL_FILES}


@pytest.mark.parametrize("name", ALL_FILES)
def test_every_line_is_a_valid_labelled_message(files, name):
    assert files[name], f"{name} is empty"
    for row in files[name]:
        where = row["_where"]
        assert set(row) - {"_where"} <= {"text", "features", "note"}, f"{where}: unknown keys {sorted(row)}"
        assert isinstance(row.get("text"), str), f"{where}: text must be a string"
        validate_text(row["text"])
        assert row["text"] == row["text"].strip(), f"{where}: text has surrounding whitespace"
        features = row.get("features")
        assert isinstance(features, list) and len(features) == len(SLOTS), f"{where}: features must be 6 values"
        assert all(type(v) is int for v in features), f"{where}: features must be integers, got {features}"
        validate_features(features, prefix=where)
        if "note" in row:
            assert isinstance(row["note"], str), f"{where}: note must be a string"


def test_no_text_appears_twice_within_or_across_files(files):
    where: dict[str, str] = {}
    for name in ALL_FILES:
        for row in files[name]:
            key = row["text"]
            assert key not in where, f"{row['_where']} repeats {where[key]}: {key!r}"
            where[key] = row["_where"]


def test_the_splits_are_the_files_the_readme_names():
    assert set(DEV_FILES) == {"dev_existing.jsonl", "dev_new.jsonl", "dev_heldout1.jsonl", "dev_heldout2.jsonl",
                              "dev_new3.jsonl", "dev_new4.jsonl", "dev_new5.jsonl", "dev_new6.jsonl", "dev_new7.jsonl", "dev_new8.jsonl", "dev_new9.jsonl", "dev_new10.jsonl", "dev_new11.jsonl"}
    assert not (DATA / "heldout.jsonl").exists() and not (DATA / "heldout2.jsonl").exists()


def test_heldout_is_disjoint_from_every_other_file_large_enough_and_covers_every_code(files):
    others = {row["text"].casefold() for name in ALL_FILES if name != HELDOUT for row in files[name]}
    held = files[HELDOUT]
    overlap = [row["_where"] for row in held if row["text"].casefold() in others]
    assert not overlap, f"{HELDOUT} texts also in other files (case-insensitive): {overlap}"
    assert len(held) >= MIN_HELDOUT, f"{HELDOUT} has {len(held)} messages, need >= {MIN_HELDOUT}"
    unnoted = [row["_where"] for row in held if not row.get("note", "").split(":", 1)[0].strip()]
    assert not unnoted, f"{HELDOUT} lines need a note naming their style: {unnoted}"
    missing = []
    for slot in SLOTS:
        seen = Counter(row["features"][slot.index] for row in held)
        if slot.coded:
            missing += [f"{slot.name}={c}" for c in (0, *(code.value for code in slot.codes)) if seen[c] < 2]
        elif not seen[0] or len(seen) < 2:
            missing.append(f"{slot.name} stated and not stated")
    assert not missing, f"codes absent from {HELDOUT} or there only once: {missing}"


def test_every_code_of_every_coded_slot_is_in_both_splits(files):
    splits = {
        "dev": [row["features"] for name in DEV_FILES for row in files[name]],
        "heldout": [row["features"] for row in files[HELDOUT]],
    }
    missing = []
    for split, vectors in splits.items():
        for slot in SLOTS:
            seen = Counter(v[slot.index] for v in vectors)
            if slot.coded:
                wanted = [0, *(code.value for code in slot.codes)]
                missing += [f"{split}: {slot.name}={c}" for c in wanted if not seen[c]]
            else:  # age, budget: both stated and not stated
                if not seen[0] or sum(n for v, n in seen.items() if v) == 0:
                    missing.append(f"{split}: {slot.name} stated and not stated")
    assert not missing, f"codes absent from a split: {missing}"


def test_new_messages_have_a_style_note_and_every_style_is_in_both_splits(files):
    styles = {}
    for name in NEW_FILES:
        for row in files[name]:
            note = row.get("note", "")
            style = note.split(":", 1)[0].strip()
            assert style, f"{row['_where']}: new messages need a note naming their style"
            styles.setdefault(style, Counter())[name] += 1
    lopsided = {s: dict(c) for s, c in styles.items() if len(c) < len(NEW_FILES)}
    assert not lopsided, f"styles found in only one split: {lopsided}"
