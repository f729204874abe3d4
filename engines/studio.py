"""The studio: one registry, one model manager, and the engines created on first use."""

from __future__ import annotations

import logging
import os
import threading

from . import __version__
from .base import Engine
from .capabilities import keys, offered
from .errors import InputError, StudioError
from .manager import ModelManager
from .registry import Registry
from .residency import UNLIMITED

log = logging.getLogger("zsstudio")


def on_zero_gpu() -> bool:
    """True on a Hugging Face ZeroGPU Space (the `spaces` package and SPACES_ZERO_GPU)."""
    if os.environ.get("SPACES_ZERO_GPU", "").lower() not in ("1", "t", "true"):
        return False  # read as the `spaces` package reads it
    try:
        import spaces  # noqa: F401
    except ImportError:
        return False
    return True


class Studio:
    """What the app, the CLI and Python users share: registry, manager, engines. (Under
    `--backend ray`, `engines.serving.client.RayStudio` stands in its place.)"""

    concurrent_runs = 1
    """Model runs at once: one, since one process holds the models."""

    def __init__(
        self,
        device: str | None = None,
        models: str | os.PathLike | None = None,
        registry: Registry | None = None,
        gpu_budget_gb: float | None = None,
        low_memory: bool = False,
    ):
        self.registry = registry or Registry.load(models)
        zero_gpu = on_zero_gpu()
        if gpu_budget_gb is not None and not (
            isinstance(gpu_budget_gb, (int, float)) and gpu_budget_gb > 0
        ):
            raise InputError(
                f"The GPU budget must be a positive number of GB, not {gpu_budget_gb!r}."
            )
        budget = None if gpu_budget_gb is None else int(gpu_budget_gb * 2**30)
        if budget is None and zero_gpu:  # each call gets a whole GPU: keep every engine
            budget = UNLIMITED
        self.manager = ModelManager(
            self.registry,
            device or ("cuda" if zero_gpu else "auto"),
            budget_bytes=budget,
            low_memory=low_memory,
        )
        self._engines: dict[str, Engine] = {}
        self._lock = threading.Lock()

    def engine(self, key: str) -> Engine:
        """The engine of one capability, created (not loaded) on first call."""
        with self._lock:
            if key not in self._engines:
                self._engines[key] = offered(key).load_engine_class()(self.manager)
            return self._engines[key]

    def preload(self, keys: list[str]) -> list[str]:
        """Load the named engines now (ZeroGPU Spaces want models loaded at import). One that
        cannot load is logged and left for its tab, which then says what is missing; returns
        the keys loaded."""
        loaded = []
        for key in keys:
            try:
                self.manager.load(self.engine(key).name)
                loaded.append(key)
            except StudioError as err:
                log.warning("%s not preloaded: %s", key, err)
        return loaded

    def on_accelerator(self, engine: str | None = None) -> bool:
        """Whether the engines run on a GPU (or another accelerator); reads the device, which
        imports torch."""
        return self.manager.device.is_accelerator

    def release(self, name: str | None = None) -> dict:
        """Release one engine's models (`name`), or every engine's (None, "" or "all"), and
        return the status after. An engine in use is released when its run ends."""
        name = (name or "").strip()
        if name in ("", "all"):
            self.manager.release(None)
            return self.status()
        if name not in keys():
            raise InputError(f"Unknown engine {name!r}; choose all or one of {', '.join(keys())}.")
        self.manager.release(offered(name).load_engine_class().name)  # the manager's key
        return self.status()

    def status(self) -> dict:
        status = {"version": __version__}
        status.update(self.manager.status())
        status["engines_created"] = sorted(self._engines)
        return status
