"""The model manager: loads an engine's parts on first use, hands them to the run, and keeps
resident what the residency budget allows (`engines.residency`)."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from . import residency
from .device import DeviceSpec, choose_device
from .errors import InputError, ModelUnavailable, OutOfMemory
from .low_memory import LowMemory
from .memory import device_memory, is_out_of_memory, weight_bytes
from .parts import LoadContext, raise_with_everything_missing
from .registry import Registry
from .releases import ReleaseQueue
from .stages import report

Loader = Callable[[LoadContext], Any]
"""Loads an engine: its parts (usually `context.lazy(...)`), handed to each run as they are."""


class ModelManager:
    """Loads engines lazily and decides which stay resident.

    Engines stay loaded while the weight memory of all of them fits `budget_bytes` (by default
    85% of a CUDA device's memory, one engine on a CPU or MPS); the least recently used one is
    released when a load would not fit (`engines.residency`).

    Thread-safe: `use()` holds a re-entrant lock while an engine runs, so two requests never
    load or run models at the same time. `status()` and `release()` never wait for that lock:
    status reads a snapshot of what is loaded, taken whenever a load or run ends, and a release
    asked for while a run holds the models happens when the run ends.
    """

    def __init__(
        self,
        registry: Registry,
        device: DeviceSpec | str | None = None,
        budget_bytes: float | None = None,
        low_memory: bool = False,
    ):
        self.registry = registry
        self.low_memory = LowMemory(on=bool(low_memory))
        self._device = device if isinstance(device, DeviceSpec) else None
        self._device_request = None if isinstance(device, DeviceSpec) else device
        self._budget_bytes = budget_bytes
        self._loaders: dict[str, Loader] = {}
        self._loaded: dict[str, Any] = {}  # engine -> its parts
        self._loaded_at: dict[str, float] = {}
        self._last_used: dict[str, int] = {}  # engine -> tick of its last use (LRU)
        self._weights: dict[str, int] = {}  # engine -> weight bytes when last measured
        self._tick = 0
        self._lock = threading.RLock()  # held while an engine loads or runs
        self._depth = 0  # how many holds of _lock are open (it is re-entrant)
        self._releases = ReleaseQueue()
        # what status() reads; held only for a moment
        self._state_lock = threading.Lock()
        self._snapshot: dict[str, dict] = {}
        self._busy: str | None = None

    @property
    def device(self) -> DeviceSpec:
        if self._device is None:
            self._device = choose_device(self._device_request)
        return self._device

    @property
    def budget_bytes(self) -> float:
        """The weight memory engines may hold together (`engines.residency`)."""
        if self._budget_bytes is None:
            self._budget_bytes = residency.default_budget(self.device)
        return self._budget_bytes

    def register(self, engine: str, loader: Loader) -> None:
        self._loaders[engine] = loader

    def is_loaded(self, engine: str) -> bool:
        return engine in self._loaded

    @contextmanager
    def _holding(self, engine: str) -> Iterator[None]:
        """Hold the run lock for `engine`; on leaving, refresh the snapshot status reads and,
        when no hold is left, perform the releases asked for meanwhile."""
        with self._lock:
            self._depth += 1
            with self._state_lock:
                outer, self._busy = self._busy, engine
            try:
                yield
            finally:
                self._depth -= 1
                with self._state_lock:
                    self._busy = outer
                if self._depth == 0:
                    self._release_queued()
                self._take_snapshot()

    def load(self, engine: str) -> Any:
        """Load an engine's parts (if needed), releasing others to make room first."""
        with self._holding(engine):
            self._tick += 1
            self._last_used[engine] = self._tick
            if engine in self._loaded:
                return self._loaded[engine]
            if engine not in self._loaders:
                raise InputError(f"Unknown engine {engine!r}; known: {sorted(self._loaders)}.")
            self._make_room(engine)
            try:
                parts = self._load(engine)
            except Exception as err:
                if not (is_out_of_memory(err) and self._loaded):
                    raise
                self._free_all_but(engine)  # the others may be what filled the device
                parts = self._load(engine)
            self._weights[engine] = weight_bytes(parts)
            self._make_room(engine)
            return parts

    def _load(self, engine: str) -> Any:
        context = LoadContext(self.registry, self.device, engine)
        report(f"loading {engine}")
        try:
            parts = self._loaders[engine](context)
        except ModelUnavailable as err:
            raise_with_everything_missing(err, context)
        self._loaded[engine] = parts
        self._loaded_at[engine] = time.time()
        return parts

    def _make_room(self, engine: str) -> None:
        resident = sorted(self._loaded, key=self._last_used.get)
        for other in residency.to_release(engine, resident, self._weights, self.budget_bytes):
            self._free(other)

    def _free_all_but(self, engine: str) -> None:
        for other in [e for e in self._loaded if e != engine]:
            self._free(other)

    @contextmanager
    def use(self, engine: str) -> Iterator[Any]:
        """Hold the lock, with the engine loaded, while the caller runs it on its parts. Out of
        memory, the other engines are released and the error says the run may be retried
        (`Engine.run` retries once); with none to release, the engine itself is."""
        with self._holding(engine):
            parts = self.load(engine)
            try:
                yield parts
            except Exception as err:
                if not is_out_of_memory(err):
                    raise
                if len(self._loaded) > 1:
                    self._free_all_but(engine)
                    raise OutOfMemory(
                        f"The {self.device.device} device ran out of memory running {engine}; "
                        "the other engines were released to make room.",
                        retry=True,
                    ) from err
                self._free(engine)
                raise OutOfMemory(
                    f"The {self.device.device} device ran out of memory running {engine}; "
                    "its models were released. Try a smaller size or fewer steps."
                ) from err

    def release(self, engine: str | None = None) -> list[str]:
        """Free one engine (or all with None); returns the names released now. While another
        thread loads or runs an engine, the release is queued instead (status() lists it under
        `release_pending`), done when that run ends, and [] is returned."""
        if self._lock.acquire(blocking=False):
            try:
                if engine is not None and engine not in self._loaded:
                    raise InputError(
                        f"Engine {engine!r} is not loaded; "
                        f"loaded: {sorted(self._loaded) or 'none'}."
                    )
                names = [engine] if engine else list(self._loaded)
                for name in names:
                    self._free(name)
                self._take_snapshot()
                return names
            finally:
                self._lock.release()
        with self._state_lock:
            known = set(self._snapshot) | {self._busy}
            loaded = sorted(self._snapshot) or "none"
        if engine is not None and engine not in known:
            raise InputError(f"Engine {engine!r} is not loaded; loaded: {loaded}.")
        self._releases.ask(engine)
        # the run may have ended between the first try and the queueing: then do it here
        if self._lock.acquire(blocking=False):
            try:
                if self._depth == 0:
                    names = self._release_queued()
                    self._take_snapshot()
                    return names
            finally:
                self._lock.release()
        return []

    def _release_queued(self) -> list[str]:
        names = self._releases.take(self._loaded)
        for name in names:
            self._free(name)
        return names

    def _free(self, engine: str) -> None:
        self._loaded.pop(engine, None)
        self._loaded_at.pop(engine, None)
        gc.collect()
        if self._device is not None and self._device.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    def _take_snapshot(self) -> None:
        """Record what is loaded for status(), and each engine's weights as they are now (its
        parts load as they are first used); call with the run lock held."""
        snapshot = {}
        for name, parts in self._loaded.items():
            self._weights[name] = weight_bytes(parts)
            snapshot[name] = {
                "weights_mb": round(self._weights[name] / 2**20, 1),
                "components": component_names(parts),
                "loaded_at": self._loaded_at[name],
            }
        with self._state_lock:
            self._snapshot = snapshot

    def status(self) -> dict:
        """What is loaded, how much memory its weights hold, what is running now, releases
        waiting for it, and the device's own figures. Never waits for a run."""
        now = time.time()
        with self._state_lock:
            engines = {
                name: {
                    "weights_mb": entry["weights_mb"],
                    "components": entry["components"],
                    "loaded_for_s": round(now - entry["loaded_at"], 1),
                }
                for name, entry in self._snapshot.items()
            }
            busy = self._busy
        status = {
            "device": self.device.describe(),
            "residency": residency.describe(self.budget_bytes),
            "loaded": engines,
            "busy": busy,
            "release_pending": self._releases.waiting(),
            "low_memory": self.low_memory.describe(self.device),
        }
        status.update(device_memory(self.device))
        return status


def component_names(parts: Any) -> list[str]:
    """The names of what an engine's parts hold now: a Parts' loaded parts, a dict's keys."""
    held = getattr(parts, "components", parts)
    return sorted(held) if isinstance(held, dict) else []
