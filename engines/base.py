"""What every engine shares: Request, Result, Recipe and the Engine interface."""

from __future__ import annotations

import dataclasses
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from . import __version__
from .errors import InputError
from .manager import LoadContext, ModelManager

Progress = Callable[[float, str], None]
"""progress(fraction in [0, 1], what is happening now)."""


def no_progress(fraction: float, description: str = "") -> None:
    """The default progress callback: ignores updates."""


@dataclass
class Recipe:
    """Everything needed to run a result again: engine, models, seed, parameters, version."""

    engine: str
    params: dict[str, Any]
    models: dict[str, dict] = field(default_factory=dict)
    seed: int | None = None
    version: str = __version__

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, data: dict) -> Recipe:
        if not isinstance(data, dict) or "engine" not in data or "params" not in data:
            raise InputError("A recipe is a JSON object with at least `engine` and `params`.")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def load(cls, path: str | Path) -> Recipe:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as err:
            raise InputError(f"Recipe file {path} does not exist.") from err
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise InputError(f"Recipe file {path} is not readable JSON: {err}.") from err
        return cls.from_dict(data)


@dataclass
class Request:
    """Base for an engine's request: a dataclass validated in one place, `validate()`."""

    def validate(self) -> None:
        """Raise InputError with an actionable message when the request cannot run."""

    def to_params(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_params(cls, params: dict[str, Any]):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(params) - names
        if unknown:
            raise InputError(f"Unknown parameters for this engine: {sorted(unknown)}.")
        return cls(**params)


@dataclass
class Result:
    """Base for an engine's result: outputs (in subclasses), metrics and the recipe."""

    recipe: Recipe
    metrics: dict[str, Any] = field(default_factory=dict)

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

    def save(self, folder: str | Path) -> list[Path]:
        """Write the outputs and `recipe.json` into `folder`; returns the files written."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        return [self.recipe.save(folder / "recipe.json")]


class Engine(ABC):
    """An engine: `load()` builds its components; `run(request, progress)` returns a Result."""

    name: ClassVar[str]
    request_type: ClassVar[type[Request]] = Request
    request_types: ClassVar[dict[str, type[Request]]] = {}
    """For engines with several tasks: task name -> request type; a recipe's params carry the
    task under "task" (the first entry is the default)."""

    def __init__(self, manager: ModelManager):
        self.manager = manager
        manager.register(self.name, self.load)

    @abstractmethod
    def load(self, context: LoadContext) -> dict[str, Any]:
        """Resolve and load this engine's components onto `context.device`."""

    @abstractmethod
    def run(self, request: Request, progress: Progress | None = None) -> Result:
        """Validate the request, run it on the loaded models, and measure the outputs."""

    def run_recipe(self, recipe: Recipe, progress: Progress | None = None) -> Result:
        if recipe.engine != self.name:
            raise InputError(f"This recipe is for {recipe.engine!r}, not {self.name!r}.")
        params = dict(recipe.params)
        request_type = self.request_type
        if self.request_types:
            task = params.pop("task", next(iter(self.request_types)))
            if task not in self.request_types:
                known = ", ".join(self.request_types)
                raise InputError(f"Unknown {self.name} task {task!r}; known: {known}.")
            request_type = self.request_types[task]
        return self.run(request_type.from_params(params), progress)

    def recipe(self, request: Request, sources: dict[str, dict], seed: int | None) -> Recipe:
        return Recipe(engine=self.name, params=request.to_params(), models=sources, seed=seed)
