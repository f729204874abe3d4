"""Controls made from a request's field declarations, and handlers that take and return
components by name.

    form = Form(TTSRequest)
    temperature = form("temperature")          # slider: range, default, label, help from the field
    form.add("voice", gr.Audio(...))           # a value the declaration leaves to the tab
    connect(button.click, speak, form.inputs, {"audio": audio}, api_name="tts")

`speak(values, call)` gets the widget values by name and returns (or yields) a dict of output
values by name; the API lists the parameters under the same names.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from engines.base import Progress, Request
from engines.cancel import CancelToken, cancellable
from engines.errors import Cancelled
from engines.fields import BOOL, CHOICE, FLOAT, INT, TEXT, FieldSpec, declaration

from .common import GPU_SECONDS, engine_handler, gradio_progress, model_event
from .running_calls import CANCEL_PRESSED, RUNS, STREAM_CLOSED, ProgressSeen
from .session_files import OUTPUTS

SLIDER_SPAN = {INT: 10_000, FLOAT: 1_000}  # wider ranges get a number box
log = logging.getLogger("zsstudio")


def elem_id(request_type: type[Request], name: str) -> str:
    return f"{request_type.__name__}-{name}"


def control(request_type: type[Request], name: str, **overrides) -> gr.components.Component:
    """The widget for one declared field: its range, default, label and help."""
    spec, default = declaration(request_type, name)
    options: dict[str, Any] = {
        "label": spec.label[:1].upper() + spec.label[1:],
        "elem_id": elem_id(request_type, name),
    }
    if spec.help:
        options["info"] = spec.help
    options.update(overrides)
    if spec.kind in (INT, FLOAT):
        return _numeric(spec, default, options)
    if spec.kind == BOOL:
        return gr.Checkbox(value=default, **options)
    if spec.kind == CHOICE:
        choices = (
            list(zip(spec.choice_labels, spec.choices, strict=True))
            if spec.choice_labels
            else list(spec.choices)
        )
        widget = gr.Radio if spec.choice_labels or len(spec.choices) <= 4 else gr.Dropdown
        return widget(choices=choices, value=default, **options)
    if spec.kind == TEXT:
        options.setdefault("max_lines", 1)
        if spec.max_length:
            options.setdefault("max_length", spec.max_length)
        return gr.Textbox(value=default, **options)
    raise TypeError(f"{request_type.__name__}.{name} has no control of its own; use Form.add")


def _numeric(spec: FieldSpec, default: Any, options: dict[str, Any]) -> gr.components.Component:
    unit = f" ({spec.unit})" if spec.unit else ""
    options["label"] = options["label"] + unit
    bounded = spec.low is not None and spec.high is not None
    widget = spec.widget or (
        "slider" if bounded and spec.high - spec.low <= SLIDER_SPAN[spec.kind] else "number"
    )
    if widget == "slider":
        step = spec.step or (1 if spec.kind == INT else (spec.high - spec.low) / 100)
        return gr.Slider(spec.low, spec.high, value=default, step=step, **options)
    # No minimum/maximum on the box: Gradio would refuse a typed value past them in its own
    # words; the range is shown in the info, and the request refuses it in ours.
    if spec.range_text():
        info = options.get("info")
        options["info"] = f"{info}; {spec.range_text()}" if info else spec.range_text()
    return gr.Number(value=default, precision=0 if spec.kind == INT else None, **options)


class Form:
    """The inputs of one request, by name: declared fields become controls (`form(name)`),
    anything else is added as it is (`form.add(name, component)`)."""

    def __init__(self, request_type: type[Request]):
        self.request_type = request_type
        self.inputs: dict[str, gr.components.Component] = {}

    def __call__(self, name: str, **overrides) -> gr.components.Component:
        return self.add(name, control(self.request_type, name, **overrides))

    def add(self, name: str, component: gr.components.Component) -> gr.components.Component:
        self.inputs[name] = component
        return component


@dataclass
class Call:
    """What a handler gets besides the values: progress, where to write its files, and whether
    the run was cancelled. `progress` raises `Cancelled` once it is (engines report progress
    between steps, so they stop there); `on_cancel` is for work that waits on something else."""

    progress: Progress
    session: str
    api_name: str = ""
    token: CancelToken = field(default_factory=CancelToken)
    seen: ProgressSeen = field(default_factory=ProgressSeen)
    """The last progress reported (the status line reads it); `progress` updates it."""

    def folder(self) -> Path:
        """A new folder for this run's files, removed with the session's outputs."""
        return OUTPUTS.new(self.session)

    @property
    def cancelled(self) -> bool:
        return self.token.cancelled

    def check(self) -> None:
        """Raise Cancelled if the run was cancelled."""
        self.token.check()

    def on_cancel(self, callback: Callable[[], None]) -> None:
        self.token.on_cancel(callback)


Handler = Callable[[dict[str, Any], Call], Any]


def named(
    fn: Handler,
    inputs: dict[str, gr.components.Component],
    outputs: dict[str, gr.components.Component],
    track_tqdm: bool = False,
    api_name: str = "",
) -> Callable:
    """A Gradio event function whose parameters are the names of `inputs` (so the API uses
    them too), calling `fn(values, call)` and turning its output dicts (names -> values) into
    component updates. Outputs left out of a dict are left as they are. While `fn` runs, the
    call is tracked in `RUNS`, so Cancel, a closed tab or a lost client cancel it."""
    names = list(inputs)
    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    parameters = [inspect.Parameter(name, positional) for name in names]
    parameters.append(inspect.Parameter("request", positional, annotation=gr.Request))
    progress = gr.Progress(track_tqdm=track_tqdm)
    parameters.append(inspect.Parameter("progress", positional, default=progress))
    event_name = api_name or fn.__name__

    def split(args: tuple) -> tuple[dict[str, Any], Call]:
        values = dict(zip(names, args[: len(names)], strict=True))
        request, progress = args[len(names)], args[len(names) + 1]
        session = getattr(request, "session_hash", None) or "no-session"
        token, seen = CancelToken(), ProgressSeen()
        shown = gradio_progress(progress)

        def report(fraction: float, description: str = "") -> None:
            seen(fraction, description)
            shown(fraction, description)

        return values, Call(cancellable(report, token), session, event_name, token, seen)

    def by_component(result: Any) -> Any:
        if not isinstance(result, dict):
            return result
        unknown = set(result) - set(outputs)
        if unknown:
            raise KeyError(f"{fn.__name__} returned unknown outputs {sorted(unknown)}")
        return {outputs[name]: value for name, value in result.items()}

    if inspect.isgeneratorfunction(fn):

        def wrapper(*args):
            values, call = split(args)
            with RUNS.track(call.session, event_name, call.token, call.seen):
                try:
                    for result in fn(values, call):
                        yield by_component(result)
                except GeneratorExit:  # Gradio closed the stream: cancelled, or the client left
                    call.token.cancel(STREAM_CLOSED)
                    raise
                except Cancelled:
                    if not call.cancelled:  # not this call's own cancel: an error to show
                        raise
                    log.info("%s (%s): %s", event_name, call.session, call.token.reason)

    else:

        def wrapper(*args):
            values, call = split(args)
            with RUNS.track(call.session, event_name, call.token, call.seen):
                try:
                    return by_component(fn(values, call))
                except Cancelled:
                    if not call.cancelled:
                        raise
                    # the Cancel button said so; the outputs stay as they were
                    log.info("%s (%s): %s", event_name, call.session, call.token.reason)
                    return unchanged(len(outputs))

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    wrapper.__signature__ = inspect.Signature(parameters)
    wrapper.__annotations__ = {"request": gr.Request}
    return wrapper


def unchanged(count: int) -> Any:
    """A handler's return value that leaves its `count` outputs as they are."""
    return gr.skip() if count == 1 else tuple(gr.skip() for _ in range(count))


def connect(
    trigger: Callable,
    fn: Handler,
    inputs: dict[str, gr.components.Component],
    outputs: dict[str, gr.components.Component],
    *,
    api_name: str,
    gpu: bool = True,
    track_tqdm: bool = False,
    cancel: gr.Button | None = None,
    gpu_duration: int | None = None,
    **options,
):
    """Wire `fn` to an event (`button.click`): inputs and outputs by name, engine errors shown
    as messages, and one model run at a time across tabs when `gpu`. `track_tqdm` also shows
    tqdm bars the engine's libraries draw. `cancel` is a button that cancels the run (it stops
    at its next step); `gpu_duration` is the seconds a ZeroGPU Space grants one call. Returns
    the event, for `.then()` or another button's `cancels=`."""
    seconds = (gpu_duration or GPU_SECONDS) if gpu else 0
    handler = engine_handler(named(fn, inputs, outputs, track_tqdm, api_name), seconds)
    settings = {**(model_event() if gpu else {}), **options}
    event = trigger(
        handler,
        inputs=list(inputs.values()),
        outputs=list(outputs.values()),
        api_name=api_name,
        **settings,
    )
    if cancel is not None:
        cancel_button(cancel, event, api_name)
    if gpu:
        still_running_notice(trigger, api_name)
    return event


STILL_RUNNING = "Your last run here is still going: wait for it to finish, or cancel it first."


def still_running_notice(trigger: Callable, api_name: str) -> None:
    """Pressed again while its run goes (the page ignores the press), the button says why."""

    def notice(request: gr.Request) -> None:
        if api_name in RUNS.running(getattr(request, "session_hash", None) or "no-session"):
            gr.Info(STILL_RUNNING)

    notice.__name__ = f"still_running_{api_name}"
    # queued (a toast needs the queue's stream), outside the model queue: it answers at once
    trigger(notice, None, None, api_visibility="private", show_progress="hidden")


def cancel_button(button: gr.Button, event, api_name: str) -> None:
    """`button` cancels `event`: Gradio ends it for the page at once, and the run itself stops
    at its next step (the button is UI-only; API clients cancel their job instead)."""

    def cancel_run(request: gr.Request) -> None:
        session = getattr(request, "session_hash", None) or "no-session"
        if RUNS.cancel(session, api_name, CANCEL_PRESSED):
            gr.Info("Cancelled: the run stops after its current step.")

    cancel_run.__name__ = f"cancel_{api_name}"
    button.click(cancel_run, None, None, cancels=[event], api_visibility="private")
