"""OUT_DIR/manifest.json: what a Ray batch job's output is (input, fingerprint, model
version, shape) and how far it got (partitions, rows, errors, timings).

The manifest is written when a job starts (status "running") and when it ends ("complete").
The part files themselves are the record of which partitions are done (each is written
atomically), so a killed job loses no finished partition even if its last manifest write
never happened. A rerun compares the job's identity with the manifest and refuses to mix
outputs of a different input, model version or shape.
"""

from __future__ import annotations

import json
from typing import Any

from clients.batch.rows import InputError
from clients.batch.storage import Location, read_bytes, write_bytes_atomically

MANIFEST_NAME = "manifest.json"
FORMAT = 1
# What an output means: a rerun with any of these different would mix outputs.
IDENTITY_KEYS = ("input", "fingerprint", "format", "mode", "id_column", "top_k", "model_version",
                 "partition_rows")


class OutputMismatch(InputError):
    """OUT_DIR holds another job's output; the message says what differs and what to do."""


def read(output: Location) -> dict[str, Any] | None:
    data = read_bytes(output.child(MANIFEST_NAME))
    if data is None:
        return None
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise InputError(f"{output.child(MANIFEST_NAME).uri} is not valid JSON ({exc}); "
                         "remove it or choose another --output") from None


def write(output: Location, manifest: dict[str, Any]) -> None:
    write_bytes_atomically(output.child(MANIFEST_NAME),
                           (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode())


def _shown(key: str, value: Any) -> str:
    if key == "fingerprint" and isinstance(value, dict):
        return f"size {value.get('size')}, sha256 {str(value.get('sha256_head_tail'))[:12]}"
    return repr(value)


def check_same_job(previous: dict[str, Any], identity: dict[str, Any], output_uri: str) -> None:
    """Raise OutputMismatch when `previous` (a manifest) describes another job."""
    before = previous.get("job", {})
    differences = [key for key in IDENTITY_KEYS if before.get(key) != identity.get(key)]
    if not differences:
        return
    lines = [f"{key}: {_shown(key, before.get(key))} in the manifest, {_shown(key, identity.get(key))} now"
             for key in differences]
    hint = "use a new --output, or remove the old one to start over"
    if differences == ["model_version"]:
        hint = (f"rerun with --model-version {before.get('model_version')} to finish it with the same "
                f"version, or {hint}")
    raise OutputMismatch(f"{output_uri} holds the output of another job, refusing to mix them "
                         f"({'; '.join(lines)}): {hint}")
