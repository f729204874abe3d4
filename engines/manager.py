"""The model manager: loads an engine's components on first use, keeps one engine resident."""

from __future__ import annotations

import dataclasses
import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from .device import DeviceSpec, choose_device
from .errors import InputError, ModelUnavailable, OutOfMemory
from .registry import Registry, ResolvedModel

log = logging.getLogger("zsstudio")


@dataclass
class LoadedModels:
    """An engine's loaded components, and the exact models they came from (for recipes)."""

    components: dict[str, Any]
    sources: dict[str, dict] = field(default_factory=dict)
    loaded_at: float = field(default_factory=time.time)

    def __getitem__(self, name: str) -> Any:
        return self.components[name]

    def parameter_bytes(self) -> int:
        """Bytes held by the torch parameters and buffers of every component."""
        seen: set[int] = set()
        total = 0
        for module in _torch_modules(self.components.values()):
            for tensor in list(module.parameters()) + list(module.buffers()):
                if id(tensor) not in seen:
                    seen.add(id(tensor))
                    total += tensor.numel() * tensor.element_size()
        return total


MODULE_SEARCH_DEPTH = 4
"""How far `_torch_modules` looks into containers, dataclasses and objects' attributes."""


def _torch_modules(objects, depth: int = MODULE_SEARCH_DEPTH, seen: set | None = None):
    """Every torch module held in `objects`: directly, in dicts, lists and tuples, in a
    diffusers pipeline's `components`, in dataclass fields or in plain objects' attributes, up
    to `depth` levels down; each object is visited once."""
    import torch

    seen = set() if seen is None else seen
    for obj in objects:
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, torch.nn.Module):
            yield obj
        elif depth > 0:
            yield from _torch_modules(_children(obj), depth - 1, seen)


def _children(obj) -> list:
    """What `obj` holds that may lead to a torch module."""
    import torch

    if isinstance(obj, (str, bytes, int, float, bool, type(None), torch.Tensor, type)):
        return []
    if isinstance(obj, dict):
        return list(obj.values())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return list(obj)
    children = []
    components = getattr(type(obj), "components", None)
    if isinstance(components, property):  # diffusers pipelines, our engines' part holders
        try:
            children.append(obj.components)
        except Exception:  # a property that cannot answer now holds nothing to count
            pass
    if dataclasses.is_dataclass(obj):
        children.extend(getattr(obj, f.name, None) for f in dataclasses.fields(obj))
    elif isinstance(getattr(obj, "__dict__", None), dict) and not isinstance(obj, ModuleType):
        children.extend(vars(obj).values())
    return children


class LoadContext:
    """What a loader gets: the device and a resolver that records what it resolved."""

    def __init__(self, registry: Registry, device: DeviceSpec, engine: str):
        self.registry = registry
        self.device = device
        self.engine = engine
        self.sources: dict[str, dict] = {}

    def resolve(self, component: str, engine: str | None = None) -> ResolvedModel:
        resolved = self.registry.resolve(engine or self.engine, component)
        self.sources[component] = resolved.recipe_entry()
        return resolved

    def lazy(self, loaders: dict[str, PartLoader]) -> LazyComponents:
        """A holder that loads each named part on first use (see LazyComponents)."""
        return LazyComponents(self, loaders)


class LazyComponents:
    """An engine's parts, each loaded on first `get(name)` by its loader, which resolves the
    registry components it needs through the context (so they are recorded for recipes).

    A part is often one registry component of the same name; it may be a group ("knn_vc" is
    WavLM plus the vocoder). `release(name)` drops one part (another backbone is picked);
    `components` is what is loaded now, for the manager's memory accounting."""

    def __init__(self, context: LoadContext, loaders: dict[str, PartLoader]):
        self.context = context
        self.loaders = dict(loaders)
        self._loaded: dict[str, Any] = {}
        self._sources: dict[str, dict[str, dict]] = {}
        self._lock = threading.RLock()

    def get(self, name: str) -> Any:
        with self._lock:
            if name not in self._loaded:
                if name not in self.loaders:
                    raise KeyError(f"{self.context.engine} has no part {name!r}")
                before = dict(self.context.sources)
                try:
                    self._loaded[name] = self.loaders[name](self.context)
                except ModelUnavailable as err:
                    _raise_with_everything_missing(err, self.context)
                self._sources[name] = {
                    key: entry
                    for key, entry in self.context.sources.items()
                    if before.get(key) is not entry
                }
            return self._loaded[name]

    def optional(self, name: str) -> tuple[Any | None, str]:
        """For a part only a metric needs: (the part, "") or, when its model is not on this
        machine or does not load, (None, "not available (model X missing)") for the metric."""
        try:
            return self.get(name), ""
        except ModelUnavailable as err:
            log.warning(
                "%s: %s is not available, its metric is left out: %s",
                self.context.engine,
                name,
                err.reason,
            )
            return None, not_available(err)

    def is_loaded(self, name: str) -> bool:
        return name in self._loaded

    def sources(self, *names: str) -> dict[str, dict]:
        """The registry entries the named parts were loaded from, for a recipe."""
        found: dict[str, dict] = {}
        for name in names:
            found.update(self._sources.get(name, {}))
        return found

    def release(self, name: str) -> None:
        with self._lock:
            self._loaded.pop(name, None)
            self._sources.pop(name, None)

    @property
    def components(self) -> dict[str, Any]:
        return dict(self._loaded)


def _raise_with_everything_missing(err: ModelUnavailable, context: LoadContext):
    """Re-raise `err`, told with the engine's other missing components when there are any."""
    fuller = context.registry.everything_missing(err, context.engine)
    if fuller is err:
        raise err
    raise fuller from err


def not_available(err: ModelUnavailable) -> str:
    """What a metric shows when the model it needs is not available."""
    missing = err.reason.startswith("not downloaded") or "does not exist" in err.reason
    detail = "missing" if missing else f"unusable: {err.reason}"
    return f"not available (model {err.component} {detail})"


Loader = Callable[[LoadContext], dict[str, Any]]
"""Loads an engine: its components by name."""
PartLoader = Callable[[LoadContext], Any]
"""Loads one part of an engine, resolving the registry components it needs."""


def is_out_of_memory(err: BaseException) -> bool:
    import torch

    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in str(err).lower()


DEFAULT_GPU_BUDGET = 0.85  # of a CUDA device's total memory


class ModelManager:
    """Loads engines lazily and decides which stay resident.

    With a memory budget (`budget_bytes`; by default 85% of a CUDA device's memory), engines
    stay loaded while the weight memory of all of them fits, and the least recently used one is
    released when a load would not fit. Without one (CPU and MPS by default) at most
    `max_resident` engines are kept (None: no limit), one by default.

    Thread-safe: `use()` holds a re-entrant lock while an engine runs, so two requests never
    load or run models at the same time. `status()` and `release()` never wait for that lock:
    status reads a snapshot of what is loaded, taken whenever a load or run ends, and a release
    asked for while a run holds the models happens when the run ends.
    """

    def __init__(
        self,
        registry: Registry,
        device: DeviceSpec | str | None = None,
        max_resident: int | None = 1,
        budget_bytes: int | None = None,
    ):
        self.registry = registry
        self._device = device if isinstance(device, DeviceSpec) else None
        self._device_request = None if isinstance(device, DeviceSpec) else device
        self.max_resident = max_resident
        self._budget_bytes = budget_bytes
        self._loaders: dict[str, Loader] = {}
        self._loaded: dict[str, LoadedModels] = {}
        self._last_used: dict[str, int] = {}  # engine -> tick of its last use (LRU)
        self._weights: dict[str, int] = {}  # engine -> weight bytes measured at its last load
        self._tick = 0
        self._lock = threading.RLock()  # held while an engine loads or runs
        self._depth = 0  # how many holds of _lock are open (it is re-entrant)
        # what status() reads, and releases queued while busy; held only for a moment
        self._state_lock = threading.Lock()
        self._snapshot: dict[str, dict] = {}
        self._busy: str | None = None
        self._pending: set[str] = set()
        self._pending_all = False

    @property
    def device(self) -> DeviceSpec:
        if self._device is None:
            self._device = choose_device(self._device_request)
        return self._device

    @property
    def budget_bytes(self) -> int | None:
        """The weight memory engines may hold together; None: `max_resident` engines."""
        if self._budget_bytes is not None or self.max_resident is None:
            return self._budget_bytes
        if self.device.device.startswith("cuda"):
            import torch

            total = torch.cuda.get_device_properties(self.device.torch_device).total_memory
            return int(DEFAULT_GPU_BUDGET * total)
        return None

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
                    self._release_pending()
                self._take_snapshot()

    def load(self, engine: str) -> LoadedModels:
        """Load an engine's components (if needed), releasing others to make room first."""
        with self._holding(engine):
            self._tick += 1
            self._last_used[engine] = self._tick
            if engine in self._loaded:
                return self._loaded[engine]
            if engine not in self._loaders:
                raise InputError(f"Unknown engine {engine!r}; known: {sorted(self._loaders)}.")
            self._make_room(engine, self._weights.get(engine, 0))
            try:
                models = self._load(engine)
            except Exception as err:
                if not (is_out_of_memory(err) and self._loaded):
                    raise
                self._free_all_but(engine)  # the others may be what filled the device
                models = self._load(engine)
            self._weights[engine] = models.parameter_bytes()
            self._make_room(engine, 0)
            return models

    def _load(self, engine: str) -> LoadedModels:
        context = LoadContext(self.registry, self.device, engine)
        try:
            components = self._loaders[engine](context)
        except ModelUnavailable as err:
            _raise_with_everything_missing(err, context)
        self._loaded[engine] = LoadedModels(components, context.sources)
        return self._loaded[engine]

    def _make_room(self, engine: str, incoming: int) -> None:
        """Release the least recently used other engines until `engine` (plus `incoming`
        bytes not loaded yet) fits the budget, or the resident count."""
        others = sorted((e for e in self._loaded if e != engine), key=self._last_used.get)
        budget = self.budget_bytes
        if budget is None:
            if self.max_resident is None:
                return
            keep = self.max_resident - (0 if engine in self._loaded else 1)
            for other in others[: max(0, len(others) - keep)]:
                self._free(other)
            return
        held = sum(self._weights.get(e, 0) for e in self._loaded) + incoming
        for other in others:
            if held <= budget:
                break
            held -= self._weights.get(other, 0)
            self._free(other)

    def _free_all_but(self, engine: str) -> None:
        for other in [e for e in self._loaded if e != engine]:
            self._free(other)

    @contextmanager
    def use(self, engine: str) -> Iterator[LoadedModels]:
        """Hold the lock, with the engine loaded, while the caller runs it. Out of memory, the
        other engines are released and the error says the run may be retried (`Engine.run`
        retries once); with none to release, the engine itself is."""
        with self._holding(engine):
            models = self.load(engine)
            try:
                yield models
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
            if engine is not None and engine not in known:
                raise InputError(
                    f"Engine {engine!r} is not loaded; loaded: {sorted(self._snapshot) or 'none'}."
                )
            if engine is None:
                self._pending_all = True
            else:
                self._pending.add(engine)
        # the run may have ended between the first try and the queueing: then do it here
        if self._lock.acquire(blocking=False):
            try:
                if self._depth == 0:
                    names = self._release_pending()
                    self._take_snapshot()
                    return names
            finally:
                self._lock.release()
        return []

    def _release_pending(self) -> list[str]:
        with self._state_lock:
            names = list(self._loaded) if self._pending_all else sorted(self._pending)
            self._pending.clear()
            self._pending_all = False
        names = [name for name in names if name in self._loaded]
        for name in names:
            self._free(name)
        return names

    def _free(self, engine: str) -> None:
        self._loaded.pop(engine, None)
        gc.collect()
        if self._device is not None and self._device.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    def _take_snapshot(self) -> None:
        """Record what is loaded for status(); call with the run lock held."""
        snapshot = {
            name: {
                "weights_mb": round(models.parameter_bytes() / 2**20, 1),
                "components": sorted(models.components),
                "loaded_at": models.loaded_at,
            }
            for name, models in self._loaded.items()
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
            pending = ["all"] if self._pending_all else sorted(self._pending)
        budget = self.budget_bytes
        status = {
            "device": self.device.describe(),
            "residency": (
                f"engines share {budget / 2**20:.0f} MB of weight memory, least recently used "
                "released first"
                if budget is not None
                else "one engine at a time"
                if self.max_resident == 1
                else f"up to {self.max_resident} engines"
                if self.max_resident
                else "every engine stays loaded"
            ),
            "loaded": engines,
            "busy": busy,
            "release_pending": pending,
        }
        status.update(_device_memory(self.device))
        return status


def _device_memory(device: DeviceSpec) -> dict:
    import torch

    if device.device.startswith("cuda"):
        index = torch.device(device.device).index or 0
        free, total = torch.cuda.mem_get_info(index)
        return {
            "gpu_allocated_mb": round(torch.cuda.memory_allocated(index) / 2**20, 1),
            "gpu_free_mb": round(free / 2**20, 1),
            "gpu_total_mb": round(total / 2**20, 1),
        }
    from .memory import process_peak_rss_mb

    rss_mb = process_peak_rss_mb()
    return {} if rss_mb is None else {"process_peak_rss_mb": rss_mb}
