"""Which model versions serve: the newest loaded version answers model_version 0, and the
newest `keep` versions stay loaded so a request can pin the previous one during a rollout.

Readers take a snapshot (a dict replaced atomically, never mutated), so a swap never blocks
or fails a request that is already running on the old version.
"""

from __future__ import annotations

import threading
from typing import Generic, Protocol, TypeVar

from recommender import errors


class Versioned(Protocol):
    version: int


M = TypeVar("M", bound=Versioned)


class VersionNotLoaded(errors.NotFound, LookupError):
    """A pinned version that is not (or no longer) loaded (NOT_FOUND)."""


class NoModelLoaded(errors.Unavailable):
    """No version is loaded yet (UNAVAILABLE; the server reports NOT_SERVING meanwhile)."""


class ModelManager(Generic[M]):
    def __init__(self, keep: int = 2):
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self.keep = keep
        self._models: dict[int, M] = {}
        self._lock = threading.Lock()  # serializes writers; readers use the snapshot

    def install(self, model: M) -> list[int]:
        """Add a loaded version; return the versions that were unloaded to keep `keep`."""
        with self._lock:
            models = dict(self._models)
            models[model.version] = model
            newest = sorted(models, reverse=True)[: self.keep]
            dropped = sorted(v for v in models if v not in newest)
            self._models = {v: models[v] for v in newest}
            return dropped

    def versions(self) -> list[int]:
        """Loaded versions, newest first."""
        return sorted(self._models, reverse=True)

    @property
    def ready(self) -> bool:
        return bool(self._models)

    def get(self, version: int = 0) -> M:
        models = self._models  # one read: a consistent snapshot
        if not models:
            raise NoModelLoaded("no model version is loaded yet; retry when health is SERVING")
        if version == 0:
            return models[max(models)]
        try:
            return models[version]
        except KeyError:
            loaded = ", ".join(str(v) for v in sorted(models, reverse=True))
            raise VersionNotLoaded(
                f"model version {version} is not loaded; loaded versions: {loaded} "
                f"(0 means the newest)"
            ) from None
