"""What the tabs, the API and `zsstudio` rely on, whoever runs the engines: `Studio` and its
`Engine`s in this process, or `RayStudio` and its `RemoteEngine`s on Ray Serve
(`engines.serving.client`). Both satisfy these protocols; code that takes a studio is typed
with `StudioInterface`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .base import Progress, Recipe, Request, Result
    from .registry import Registry
    from .runs import BackgroundRun


@runtime_checkable
class EngineInterface(Protocol):
    """An engine as the tabs see it. The long runs' `start` / `cancel` are GAN's and NeRF's
    (and every RemoteEngine's)."""

    name: str
    tasks: dict[type[Request], str]

    def run(self, request: Request, progress: Progress | None = None) -> Result: ...

    def run_recipe(self, recipe: Recipe, progress: Progress | None = None) -> Result: ...

    def request_from_recipe(self, recipe: Recipe) -> Request: ...

    def request_types(self) -> list[type[Request]]: ...


@runtime_checkable
class LongRunInterface(EngineInterface, Protocol):
    """An engine whose runs stream updates and can be stopped (GAN adaptation, NeRF fit)."""

    def start(self, request: Request) -> BackgroundRun: ...

    def cancel(self, run_id: str) -> bool: ...


@runtime_checkable
class StudioInterface(Protocol):
    """One registry and the engines by capability key."""

    registry: Registry
    concurrent_runs: int
    """Model runs the app lets through at once."""

    def engine(self, key: str) -> EngineInterface:
        """The engine of one capability (a LongRunInterface for GAN and NeRF)."""
        ...

    def preload(self, keys: list[str]) -> list[str]: ...

    def on_accelerator(self, engine: str | None = None) -> bool: ...

    def release(self, name: str | None = None) -> dict: ...

    def status(self) -> dict: ...
