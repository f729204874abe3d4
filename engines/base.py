"""What every engine shares: Request, Result and the Engine interface (Recipe: engines.recipes)."""

from __future__ import annotations

import dataclasses
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .errors import InputError, OutOfMemory
from .fields import declared_fields, sized_fields
from .manager import ModelManager
from .metric_labels import MetricLabels
from .outputs import write_bytes
from .parts import LoadContext, Parts
from .recipes import Recipe, record_inputs
from .stages import reporting

Progress = Callable[[float, str], None]
"""progress(fraction in [0, 1], what is happening now)."""


def no_progress(fraction: float, description: str = "") -> None:
    """The default progress callback: ignores updates."""


@dataclass
class Request:
    """Base for an engine's request: a dataclass whose fields are declared with
    `engines.fields` (default, range, help), validated in one place, `validate()`."""

    task: ClassVar[str] = ""
    """For engines with several tasks: this request's task name (recipes carry it)."""

    @classmethod
    def sized_defaults(cls, accelerator: bool) -> dict[str, Any]:
        """What the device-sized fields (size, steps, iterations: declared with `cpu=`) take
        when the caller gives none, on an accelerator or on a CPU: name -> value."""
        return {name: spec.sized_default(accelerator) for name, spec in sized_fields(cls)}

    def size_for(self, accelerator: bool) -> None:
        """Fill every device-sized field the caller left out (None) with the device's value;
        the engine does this before a run, so UI, API and CLI alike get it, and the recipe
        records the values used."""
        for name, value in self.sized_defaults(accelerator).items():
            if getattr(self, name) is None:
                setattr(self, name, value)

    def validate(self) -> None:
        """Check and convert every declared field, then the rules between fields (`check`).
        Raises InputError with a message a user can act on. A device-sized field not yet
        given is checked at its accelerator value (the largest) and left unset; the engine
        sizes the request for its device and validates it again before the run."""
        for declared, spec in declared_fields(type(self)):
            setattr(self, declared.name, spec.check(getattr(self, declared.name)))
        unset = {
            name: spec.sized_default(True)
            for name, spec in sized_fields(type(self))
            if getattr(self, name) is None
        }
        for name, value in unset.items():
            setattr(self, name, value)
        try:
            self.check()
        finally:
            for name in unset:
                setattr(self, name, None)

    def check(self) -> None:
        """Rules that involve several fields, or the engine's own value types; subclasses."""

    def to_params(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_params(cls, params: dict[str, Any]):
        if not isinstance(params, dict):
            raise InputError(f"A recipe's params must be a JSON object, got {params!r}.")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(params) - names
        if unknown:
            raise InputError(f"Unknown parameters for this engine: {sorted(unknown)}.")
        return cls(**params)


@dataclass
class Result:
    """Base for an engine's result: outputs (in subclasses), metrics and the recipe.

    Saved, every result is one folder: its output files (`files()`), `metrics.json` with the
    metrics measured on them, and `recipe.json` that reproduces it (`zsstudio run`)."""

    recipe: Recipe
    metrics: dict[str, Any] = field(default_factory=dict)
    metric_labels: ClassVar[MetricLabels] = MetricLabels()
    """How the metrics read in the app (label, unit, meaning per key), beside the engine's."""

    def to_dict(self) -> dict:
        return {
            "engine": self.recipe.engine,
            "metrics": self.metrics,
            "outputs": self.output_summary(),
            "recipe": self.recipe.to_dict(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str)

    def output_summary(self) -> dict[str, Any]:
        """A JSON-able description of the outputs (sizes, durations); subclasses extend it."""
        return {}

    def files(self) -> dict[str, bytes]:
        """The output files by name, as bytes; subclasses."""
        return {}

    def save(self, folder: str | Path) -> list[Path]:
        """Write the outputs, `metrics.json`, `recipe.json` and the recipe's input files
        (inputs/) into `folder`; returns the paths."""
        folder = Path(folder)
        written = [write_bytes(folder / name, data) for name, data in self.files().items()]
        written.append(write_bytes(folder / "metrics.json", metrics_json(self.metrics).encode()))
        return written + self.recipe.save_bundle(folder)


def metrics_json(metrics: dict[str, Any]) -> str:
    return json.dumps(metrics, indent=2, default=str) + "\n"


class Engine(ABC):
    """An engine: `load()` builds its components; `run(request, progress)` returns a Result.

    `tasks` maps each request type to the name of the method that runs it, taking (request,
    progress); `run` validates the request, dispatches on its type (and runs it once more when
    an out-of-memory error released other engines to make room). With several tasks, recipes
    carry the task's name."""

    name: ClassVar[str]
    tasks: ClassVar[dict[type[Request], str]] = {}

    def __init__(self, manager: ModelManager):
        self.manager = manager
        manager.register(self.name, self.load)

    @abstractmethod
    def load(self, context: LoadContext) -> Parts:
        """This engine's parts (`context.lazy(loaders)`), those every run needs loaded onto
        `context.device` now; `self.manager.use(self.name)` hands them to each run."""

    def run(self, request: Request, progress: Progress | None = None) -> Result:
        """Validate the request (bad input is refused before any model loads), run it on the
        loaded models, and measure the outputs."""
        task = getattr(self, self._task_method(request))
        self.size(request)
        # models loading (or downloading) during the run are a stage of its progress
        with reporting(progress or no_progress) as progress:
            try:
                return task(request, progress)
            except OutOfMemory as err:
                if not err.retry:  # room was made by releasing other engines: once more
                    raise
                return task(request, progress)

    def size(self, request: Request) -> None:
        """Size the request for this engine's device (`Request.size_for`) and validate it."""
        request.size_for(self.manager.device.is_accelerator)
        request.validate()

    def _task_method(self, request: Request) -> str:
        for request_type, method in self.tasks.items():
            if isinstance(request, request_type):
                return method
        takes = ", ".join(t.__name__ for t in self.tasks)
        raise InputError(f"The {self.name} engine takes {takes}, not {type(request).__name__}.")

    def request_types(self) -> list[type[Request]]:
        return list(self.tasks)

    def request_from_recipe(self, recipe: Recipe) -> Request:
        if recipe.engine != self.name:
            raise InputError(f"This recipe is for {recipe.engine!r}, not {self.name!r}.")
        params = recipe.params
        if not isinstance(params, dict):
            raise InputError(f"A recipe's params must be a JSON object, got {params!r}.")
        if len(self.tasks) <= 1:
            return next(iter(self.tasks)).from_params(params)
        params = dict(params)
        by_task = {t.task: t for t in self.tasks}
        task = params.pop("task", None)
        if task is not None and not isinstance(task, str):
            raise InputError(f"A recipe's task must be a name, got {task!r}.")
        if task not in by_task:
            known = ", ".join(by_task)
            if task is None:
                raise InputError(f"A {self.name} recipe names its task in params; known: {known}.")
            raise InputError(f"Unknown {self.name} task {task!r}; known: {known}.")
        return by_task[task].from_params(params)

    def run_recipe(self, recipe: Recipe, progress: Progress | None = None) -> Result:
        return self.run(self.request_from_recipe(recipe), progress)

    def recipe(self, request: Request, sources: dict[str, dict], seed: int | None) -> Recipe:
        params = request.to_params()
        inputs = record_inputs(type(request), params)
        if len(self.tasks) > 1:
            params = {"task": request.task, **params}
        return Recipe(engine=self.name, params=params, models=sources, seed=seed, inputs=inputs)
