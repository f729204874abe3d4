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
from engines.fields import declaration
from engines.interface import StudioInterface
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
    and gets none (it must answer while a model runs: status, Stop, Cancel)."""

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as err:
                raise user_error(err, fn.__name__) from err

    else:

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as err:
                raise user_error(err, fn.__name__) from err

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


def metrics_table(label: str = "Measured") -> gr.Dataframe:
    """A [metric, value] table tall enough for every row (no inner scrolling), long values
    wrapped."""
    return gr.Dataframe(
        headers=["metric", "value"],
        label=label,
        interactive=False,
        wrap=True,
        max_height=2000,
        column_widths=["45%", "55%"],
    )


def metrics_rows(metrics: dict[str, Any]) -> list[list[Any]]:
    """Metrics as [name, value] rows for a gr.Dataframe, floats rounded for reading."""
    rows = []
    for name, value in metrics.items():
        if isinstance(value, float):
            value = round(value, 4)
        rows.append([name, value])
    return rows


class FormFields(Protocol):
    """What `cpu_notice` reads of a `forms.Form` (forms builds on this module, not the other
    way round)."""

    request_type: type[Request]
    inputs: dict[str, Any]


def cpu_notice(
    studio: StudioInterface,
    notice: gr.Markdown,
    form: FormFields | None,
    slow: str,
    engine: str | None = None,
) -> None:
    """On a CPU, when the page loads: show `notice` (that runs are slow, `slow` says how slow)
    and start the form at its request's CPU-sized values (`Request.cpu_defaults`). Nothing
    changes on a GPU. The device (of `engine`'s replicas, on Ray Serve) is read at page load,
    not at build (that would import torch)."""
    cpu_sized = form.request_type.cpu_defaults if form else {}
    sized = {n: v for n, v in cpu_sized.items() if n in form.inputs}
    targets = [form.inputs[name] for name in sized]
    labels = ", ".join(
        f"{declaration(form.request_type, n)[0].label} {v}" for n, v in sized.items()
    )
    text = f"**Running on a CPU** (no GPU found): {slow}"
    if sized:
        text += f" The settings start CPU-sized ({labels}); raise them for full quality."

    def on_load():
        if studio.on_accelerator(engine):
            updates = [gr.update(visible=False)] + [gr.update() for _ in targets]
        else:
            updates = [gr.update(value=text, visible=True)]
            updates += [gr.update(value=v) for v in sized.values()]
        return updates if targets else updates[0]

    root = Context.root_block
    root.load(
        on_load,
        outputs=[notice, *targets],
        api_visibility="private",
        show_progress="hidden",
        queue=False,
    )


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
