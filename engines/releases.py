"""Releases asked for while a run holds the models: queued, and done when the run ends."""

from __future__ import annotations

import threading
from collections.abc import Iterable


class ReleaseQueue:
    def __init__(self):
        self._lock = threading.Lock()
        self._names: set[str] = set()
        self._all = False

    def ask(self, engine: str | None) -> None:
        """Queue one engine's release, or every engine's (None)."""
        with self._lock:
            if engine is None:
                self._all = True
            else:
                self._names.add(engine)

    def take(self, loaded: Iterable[str]) -> list[str]:
        """The engines of `loaded` to release now, emptying the queue."""
        loaded = list(loaded)
        with self._lock:
            names = loaded if self._all else sorted(self._names)
            self._names.clear()
            self._all = False
        return [name for name in names if name in loaded]

    def waiting(self) -> list[str]:
        """What status lists under `release_pending`: ["all"] or the engines' names."""
        with self._lock:
            return ["all"] if self._all else sorted(self._names)
