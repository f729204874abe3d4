"""What every tab shares: engine error mapping, GPU event settings, recipe files, tables.
(Controls from field declarations and handlers by name are in `forms`.)"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from engines.base import Progress, Result
from engines.errors import StudioError
from engines.studio import on_zero_gpu

GPU_EVENT: dict[str, Any] = {"concurrency_id": "gpu", "concurrency_limit": 1}
"""Event settings for handlers that run models: one at a time, across every tab."""


def engine_handler(fn: Callable) -> Callable:
    """Wrap an event handler (plain or streaming generator): engine errors become gr.Error,
    and on ZeroGPU it gets a GPU."""

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except StudioError as err:
                raise gr.Error(str(err), print_exception=False) from err

    else:

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except StudioError as err:
                raise gr.Error(str(err), print_exception=False) from err

    if on_zero_gpu():
        import spaces

        return spaces.GPU(wrapper)
    return wrapper


def gradio_progress(progress: gr.Progress) -> Progress:
    """Adapt gr.Progress to the engines' progress(fraction, description) callback."""

    def update(fraction: float, description: str = "") -> None:
        progress(fraction, desc=description or None)

    return update


def recipe_file(result: Result, folder: Path) -> str:
    """Write the result's recipe into a run's folder, for the UI to offer for download."""
    return str(result.recipe.save(folder / f"{result.recipe.engine}-recipe.json"))


def metrics_rows(metrics: dict[str, Any]) -> list[list[Any]]:
    """Metrics as [name, value] rows for a gr.Dataframe, floats rounded for reading."""
    rows = []
    for name, value in metrics.items():
        if isinstance(value, float):
            value = round(value, 4)
        rows.append([name, value])
    return rows
