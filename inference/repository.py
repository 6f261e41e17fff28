"""The model source: which versions exist under --models-dir, and which are new.

Polling only lists folders (no TensorFlow); the manager decides what to load. A version
that failed to load is remembered so it is logged once, not retried on every poll.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from recommender import model_repository


@dataclass
class VersionSource:
    models_dir: str | os.PathLike
    failed: set[int] = field(default_factory=set)

    def available(self) -> list[int]:
        """Published versions, ascending (staging folders are never listed)."""
        return model_repository.list_versions(self.models_dir)

    def candidates(self, loaded: set[int], keep: int = 2) -> list[int]:
        """Versions worth loading now, newest first: not loaded, not failed, and newer than
        the oldest version we would keep (at most `keep` of them)."""
        fresh = [v for v in reversed(self.available()) if v not in loaded and v not in self.failed]
        if loaded and len(loaded) >= keep:
            floor = sorted(loaded)[-keep]
            fresh = [v for v in fresh if v > floor]
        return fresh[:keep]

    def mark_failed(self, version: int) -> None:
        self.failed.add(version)

    def version_dir(self, version: int):
        return model_repository.version_dir(self.models_dir, version)
