"""What a clip's samples give (WavLM features, a voice prompt's latents, a style clip's prosody),
kept by the samples' SHA-256: a voice or style clip used again is not analysed again.

Only pure functions of the samples are cached, so a hit returns exactly what computing again
would. The cache belongs to the loaded part that computes (its entries go with the weights).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from threading import Lock
from typing import Generic, TypeVar

import numpy as np

T = TypeVar("T")


def clip_key(samples: np.ndarray, what: str) -> str:
    """`what` names the analysis and anything else it depends on (layer, sample rate)."""
    digest = hashlib.sha256(what.encode())
    digest.update(f"|{samples.dtype.str}|{samples.shape}|".encode())
    digest.update(np.ascontiguousarray(samples).tobytes())
    return digest.hexdigest()


def tensor_bytes(value) -> int:
    """Bytes held by a tensor or array (0 for small Python objects)."""
    if hasattr(value, "element_size") and hasattr(value, "numel"):
        return int(value.element_size() * value.numel())
    return int(getattr(value, "nbytes", 0))


class ClipCache(Generic[T]):
    """Least recently used out first, within `max_bytes` and `max_entries`."""

    def __init__(self, max_bytes: int = 256 << 20, max_entries: int = 16):
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[T, int]] = OrderedDict()
        self._lock = Lock()
        self.hits = 0
        self.misses = 0

    def get(self, samples: np.ndarray, what: str, compute: Callable[[np.ndarray], T]) -> T:
        key = clip_key(samples, what)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return self._entries[key][0]
        value = compute(samples)
        size = tensor_bytes(value)
        with self._lock:
            self.misses += 1
            if size <= self.max_bytes:
                self._entries[key] = (value, size)
                self._evict()
        return value

    @property
    def nbytes(self) -> int:
        return sum(size for _, size in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _evict(self) -> None:
        while len(self._entries) > self.max_entries or self.nbytes > self.max_bytes:
            self._entries.popitem(last=False)
