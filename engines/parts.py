"""An engine's parts: what its `load` returns and `manager.use` hands back. Each part is loaded
on first `get(name)` by its loader, which resolves the registry components it needs through
the LoadContext, so the exact models it came from are recorded for recipes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from .device import DeviceSpec
from .errors import ModelUnavailable
from .registry import Registry, ResolvedModel
from .stages import report

log = logging.getLogger("zsstudio")


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

    def lazy(self, loaders: dict[str, PartLoader]) -> Parts:
        """The engine's parts, each loaded on first use by its loader (see Parts)."""
        return Parts(self, loaders)


PartLoader = Callable[[LoadContext], Any]
"""Loads one part of an engine, resolving the registry components it needs."""


class Parts:
    """An engine's parts, each loaded on first `get(name)`.

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
                report(f"loading {self.context.engine}: {name}")
                try:
                    self._loaded[name] = self.loaders[name](self.context)
                except ModelUnavailable as err:
                    raise_with_everything_missing(err, self.context)
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


def raise_with_everything_missing(err: ModelUnavailable, context: LoadContext):
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
