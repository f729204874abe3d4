"""What every tab shares: engine error mapping, GPU event settings, recipe files, tables.
(Controls from field declarations and handlers by name are in `forms`.)"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import gradio as gr
from gradio.context import Context

from engines.base import Progress, Request, Result
from engines.errors import StudioError
from engines.fields import sized_fields
from engines.heap import return_freed_memory
from engines.interface import StudioInterface
from engines.metric_labels import MetricLabels
from engines.studio import on_zero_gpu

log = logging.getLogger("zsstudio")

GPU_EVENT: dict[str, Any] = {"concurrency_id": "gpu", "concurrency_limit": 1}
"""Event settings for handlers that run models: one at a time, across every tab (in-process;
`model_runs` lets more through when Ray Serve replicas run them)."""

_model_event: dict[str, Any] = GPU_EVENT


@contextlib.contextmanager
def model_runs(at_once: int) -> Iterator[None]:
    """While tabs are built inside this block, their model events run `at_once` at a time."""
    global _model_event
    before, _model_event = _model_event, {**GPU_EVENT, "concurrency_limit": at_once}
    try:
        yield
    finally:
        _model_event = before


def model_event() -> dict[str, Any]:
    """The event settings of a handler that runs a model (see `model_runs`)."""
    return dict(_model_event)


GPU_SECONDS = 120
"""The GPU time a ZeroGPU Space grants one model call unless the tab asks for another."""


def engine_handler(fn: Callable, gpu_duration: int = 0) -> Callable:
    """Wrap an event handler (plain or streaming generator) so every failure reaches the user
    as a message: engine errors as they are, anything unexpected as one short sentence with an
    id that the server log repeats beside the traceback. On ZeroGPU a handler given a
    `gpu_duration` gets a GPU for that many seconds (`spaces.GPU`); with 0 it runs no model
    and gets none (it must answer while a model runs: status, Stop, Cancel). After a handler
    that runs a model, the heap's free memory goes back to the OS (`engines.heap`)."""

    runs_a_model = bool(gpu_duration)
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as err:
                raise user_error(err, fn.__name__) from err
            finally:
                if runs_a_model:
                    return_freed_memory()

    else:

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as err:
                raise user_error(err, fn.__name__) from err
            finally:
                if runs_a_model:
                    return_freed_memory()

    if gpu_duration and on_zero_gpu():
        import spaces

        wrapper = spaces.GPU(duration=gpu_duration)(wrapper)
    wrapper.gpu_duration = gpu_duration if on_zero_gpu() else 0
    return wrapper


def user_error(err: Exception, where: str) -> gr.Error:
    """The message a user sees for `err`: ours for the errors we raise (and Gradio's own
    gr.Error as it is), a short one with an id for anything else, logged with its traceback."""
    if isinstance(err, gr.Error):
        return err
    if isinstance(err, StudioError):
        return gr.Error(str(err), print_exception=False)
    error_id = uuid.uuid4().hex[:8]
    log.error("error %s in %s: %s", error_id, where, err, exc_info=err)
    return gr.Error(
        f"Something went wrong on the server (error id {error_id}). Nothing you entered "
        "caused it; the server log has the details under that id.",
        title="Unexpected error",
        print_exception=False,
    )


def gradio_progress(progress: gr.Progress) -> Progress:
    """Adapt gr.Progress to the engines' progress(fraction, description) callback."""

    def update(fraction: float, description: str = "") -> None:
        progress(fraction, desc=description or None)

    return update


RECIPE_LABEL = "Recipe (re-run it with: zsstudio run FILE)"
PIXELATED = "zss-pixelated"
"""The class of an image output that may be small (a 32 px GAN preview): the page shows it
scaled up without smoothing (app.CSS)."""


def recipe_file(result: Result, folder: Path) -> str:
    """Write the result's recipe into a run's folder, for the UI to offer for download: a zip
    holding recipe.json and the input files when the run had any (uploads are temporary on the
    server), else the recipe.json alone, named by engine and task. `zsstudio run` takes
    either."""
    recipe = result.recipe
    task = recipe.params.get("task") if isinstance(recipe.params, dict) else None
    stem = f"{recipe.engine}-{task}" if task else recipe.engine  # speech-tts, speech-vc ...
    if recipe.inputs:
        return str(recipe.save_zip(folder / f"{stem}-recipe.zip"))
    return str(recipe.save(folder / f"{stem}-recipe.json"))


METRIC_HEADERS = ["metric", "value", "what it means"]


def metrics_table(label: str = "Measured") -> gr.Dataframe:
    """A [metric, value, meaning] table tall enough for every row (no inner scrolling), long
    values wrapped."""
    return gr.Dataframe(
        headers=METRIC_HEADERS,
        label=label,
        interactive=False,
        wrap=True,
        max_height=2000,
        column_widths=["30%", "25%", "45%"],
    )


class MetricRows(list):
    """A metrics table's rows (label, value, meaning) that also carry the raw metrics, which
    the API returns instead (keys and numbers as in metrics.json, for programs to read)."""

    def __init__(self, rows: list[list[str]], raw: dict[str, Any]):
        super().__init__(rows)
        self.raw = raw


def metrics_rows(result: Result | dict[str, Any]) -> MetricRows:
    """A result's metrics as the engine's presenter reads them (`Result.metric_labels`):
    label, value in significant figures with its unit, meaning. A plain dict shows its keys."""
    if isinstance(result, Result):
        return MetricRows(result.metric_labels.rows(result.metrics), result.metrics)
    return MetricRows(MetricLabels().rows(result), result)


class FormFields(Protocol):
    """What `cpu_notice` reads of a `forms.Form` (forms builds on this module, not the other
    way round)."""

    request_type: type[Request]
    inputs: dict[str, Any]


def cpu_notice(
    studio: StudioInterface,
    notice: gr.Markdown,
    forms: FormFields | list[FormFields] | None,
    slow: str,
    engine: str | None = None,
) -> None:
    """When the page loads, fill the forms' device-sized fields (declared with `cpu=`, which
    start empty) with the device's values, and on a CPU show `notice`: that runs are slow
    (`slow` says how slow) and which values are CPU-sized. The device (of `engine`'s
    replicas, on Ray Serve) is read at page load, not at build (that would import torch).
    API calls and the CLI get the same values from the request itself."""
    forms = [] if forms is None else forms if isinstance(forms, list) else [forms]
    sized = [
        (form.inputs[name], spec)
        for form in forms
        for name, spec in sized_fields(form.request_type)
        if name in form.inputs
    ]
    targets = [component for component, _ in sized]
    labels = ", ".join(dict.fromkeys(f"{spec.label} {spec.sized[1]}" for _, spec in sized))
    text = f"**Running on a CPU** (no GPU found): {slow}"
    if sized:
        text += f" The settings start CPU-sized ({labels}); raise them for full quality."

    def on_load():
        accelerator = studio.on_accelerator(engine)
        shown = gr.update(visible=False) if accelerator else gr.update(value=text, visible=True)
        values = [gr.update(value=spec.sized_default(accelerator)) for _, spec in sized]
        return [shown, *values] if targets else shown

    root = Context.root_block
    root.load(
        on_load,
        outputs=[notice, *targets],
        api_visibility="private",
        show_progress="hidden",
        queue=False,
    )


def sized_defaults_text(request_type: type[Request]) -> str:
    """ "Not given, width is 512 px on a GPU, 256 on a CPU; ..." for an endpoint's description
    ("" when the request has no device-sized fields)."""
    parts = [f"{spec.label} {spec.sized_text()}" for _, spec in sized_fields(request_type)]
    return f"Left out, {'; '.join(parts)}." if parts else ""


def intro(text: str, also_shown: str = "") -> None:
    """A tab's introduction, folded: its first sentence (and `also_shown`) stay in view, the
    rest opens under "How it works", so on a phone the inputs are near the top."""
    head, _, rest = text.replace("\n", " ").partition(". ")
    gr.Markdown(f"{head}. {also_shown}".strip(), elem_classes="zss-intro")
    if rest.strip():
        with gr.Accordion("How it works", open=False):
            gr.Markdown(text)


def api_only(
    fn: Callable, api_name: str, labels: dict[str, str], returns: str = "", **options
) -> None:
    """An endpoint for API clients alone (`gr.api`, typed by `fn`'s hints), its parameters
    labelled as `labels` says (Gradio would call them 1st, 2nd ...) and its return value as
    `returns`; the docstring's first paragraph is the endpoint's description."""
    dependency = gr.api(fn, api_name=api_name, **options)
    block_fn = Context.root_block.fns[dependency["id"]]
    names = list(inspect.signature(fn).parameters)
    for name, component in zip(names, block_fn.inputs, strict=True):
        component.label = labels[name]
    for component in block_fn.outputs:
        component.label = returns or api_name
