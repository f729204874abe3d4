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
import json
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from engines.base import Progress, Request
from engines.cancel import CancelToken, cancellable
from engines.errors import Cancelled
from engines.fields import (
    BOOL,
    CHOICE,
    FLOAT,
    INT,
    TEXT,
    VALUE,
    FieldSpec,
    declaration,
    declared_fields,
)

from .common import (
    GPU_SECONDS,
    METRIC_HEADERS,
    MetricRows,
    engine_handler,
    gradio_progress,
    model_event,
    sized_defaults_text,
)
from .running_calls import CANCEL_PRESSED, RUNS, STREAM_CLOSED, ProgressSeen
from .session_files import OUTPUTS

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
        if spec.choice_labels or len(spec.choices) <= 4:
            return gr.Radio(choices=choices, value=default, **options)
        # A typed value reaches the request (which names the choices) instead of the
        # dropdown falling back to its last value in silence.
        return gr.Dropdown(choices=choices, value=default, allow_custom_value=True, **options)
    if spec.kind == TEXT:
        # No max_length on the box: the browser would cut longer text in silence; the request
        # refuses it naming the limit.
        options.setdefault("max_lines", 1)
        return gr.Textbox(value=default, **options)
    raise TypeError(f"{request_type.__name__}.{name} has no control of its own; use Form.add")


def _numeric(spec: FieldSpec, default: Any, options: dict[str, Any]) -> gr.components.Component:
    """A number box with no bounds and no rounding of its own: a slider's box clamps a typed
    value to its range in the browser, and a box with `precision` rounds 2.5 to 2, both in
    silence, so the value reaches the request as typed and the request refuses it in its own
    words (the range is in the info). A device-sized field starts empty: the page fills in
    the device's value when it loads (`common.cpu_notice`), and an API call that leaves it
    out gets the same value from the request."""
    unit = f" ({spec.unit})" if spec.unit else ""
    options["label"] = options["label"] + unit
    sized = f"if not given: {spec.sized_text()}" if spec.sized is not None else ""
    details = [options.get("info"), sized, spec.range_text()]
    options["info"] = "; ".join(d for d in details if d)
    box = gr.Number(value=default, step=_arrow_step(spec, default), **options)
    # On the API page: an integer where the field is one (the request checks it is), its range
    # and, for a device-sized field, the values it takes when left out.
    described = [spec.range_text(), f"left out: {spec.sized_text()}" if spec.sized else ""]
    schema = {
        "type": "integer" if spec.kind == INT else "number",
        "additional_description": "; ".join(d for d in described if d),
    }
    box.api_info = lambda: schema
    return box


def _arrow_step(spec: FieldSpec, default: Any) -> float:
    """How far the box's arrows move the value: the declared step, else 1 for whole numbers
    and a tenth of the default's order of magnitude for others."""
    if spec.step:
        return spec.step
    if spec.kind == INT:
        return 1
    typical = abs(default or (spec.sized or (0,))[0] or 1.0)
    return 10.0 ** (math.floor(math.log10(typical)) - 1)


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


REQUIRED = object()
"""The signature default of a parameter the API lists as required (Gradio makes a parameter
optional, defaulting to None, when its component starts empty and its default is None)."""


def named(
    fn: Handler,
    inputs: dict[str, gr.components.Component],
    outputs: dict[str, gr.components.Component],
    track_tqdm: bool = False,
    api_name: str = "",
    required: Iterable[str] = (),
    leave_out: Iterable[str] = (),
) -> Callable:
    """A Gradio event function whose parameters are the names of `inputs` (so the API uses
    them too), calling `fn(values, call)` and turning its output dicts (names -> values) into
    component updates. Outputs left out of a dict are left as they are. While `fn` runs, the
    call is tracked in `RUNS`, so Cancel, a closed tab or a lost client cancel it. On the API,
    an input that starts empty is optional (None) unless it is `required`; outputs named in
    `leave_out` are dropped from `fn`'s dicts (those an API endpoint does not return)."""
    names = list(inputs)
    needed, dropped = set(required), set(leave_out)
    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    parameters = [
        inspect.Parameter(name, positional, default=REQUIRED if name in needed else None)
        for name in names
    ]
    parameters.append(inspect.Parameter("request", positional, default=None, annotation=gr.Request))
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
        result = {name: value for name, value in result.items() if name not in dropped}
        unknown = set(result) - set(outputs)
        if unknown:
            raise KeyError(f"{fn.__name__} returned unknown outputs {sorted(unknown)}")
        return {outputs[name]: _as_for(outputs[name], value) for name, value in result.items()}

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
    trigger: Callable | None,
    fn: Handler,
    inputs: Form | dict[str, gr.components.Component],
    outputs: dict[str, gr.components.Component],
    *,
    api_name: str,
    gpu: bool = True,
    track_tqdm: bool = False,
    cancel: gr.Button | None = None,
    gpu_duration: int | None = None,
    api_fn: Handler | None = None,
    api_inputs: dict[str, gr.components.Component] | None = None,
    api_outputs: tuple[str, ...] | None = None,
    ui_name: str = "",
    **options,
):
    """Wire `fn` to an event (`button.click`): inputs and outputs by name, engine errors shown
    as messages, and one model run at a time across tabs when `gpu`. `track_tqdm` also shows
    tqdm bars the engine's libraries draw. `cancel` is a button that cancels the run (it stops
    at its next step); `gpu_duration` is the seconds a ZeroGPU Space grants one call. Returns
    the event, for `.then()` or another button's `cancels=`.

    Unless `api_visibility="private"`, the API gets its own endpoint `api_name` (`api_endpoint`):
    `api_fn` (default `fn`) on `api_inputs` (default the tab's inputs) returning `api_outputs`
    (default all) under their short names; the tab's own event is then private (`ui_name`)."""
    if options.get("api_visibility", "public") == "public":
        api_endpoint(
            api_fn or fn,
            inputs if api_inputs is None else api_inputs,
            _only(outputs, api_outputs),
            api_name=api_name,
            gpu=gpu,
            track_tqdm=track_tqdm,
            gpu_duration=gpu_duration,
            required=_required(inputs) if api_inputs is None else (),
            leave_out=set(outputs) - set(_only(outputs, api_outputs)),
            request_type=inputs.request_type if isinstance(inputs, Form) else None,
            **options,
        )
        if trigger is None:
            return None
        options = {**options, "api_visibility": "private"}
    seconds = (gpu_duration or GPU_SECONDS) if gpu else 0
    fields = inputs.inputs if isinstance(inputs, Form) else inputs
    handler = engine_handler(named(fn, fields, outputs, track_tqdm, api_name), seconds)
    settings = {**(model_event() if gpu else {}), **options}
    event = trigger(
        handler,
        inputs=list(fields.values()),
        outputs=list(outputs.values()),
        api_name=ui_name or f"{api_name}_in_tab",
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


def api_endpoint(
    fn: Handler,
    inputs: Form | dict[str, gr.components.Component],
    outputs: dict[str, gr.components.Component],
    *,
    api_name: str,
    gpu: bool = True,
    track_tqdm: bool = False,
    gpu_duration: int | None = None,
    required: Iterable[str] = (),
    leave_out: Iterable[str] = (),
    request_type: type[Request] | None = None,
    **options,
):
    """An endpoint for API clients: `fn` on `inputs` (the tab's own components, or hidden ones
    that take plain values), its outputs hidden twins of `outputs` labelled with their short
    names (the API names outputs after labels), file inputs described in words, and every
    input that starts empty optional unless `required`; its description, `fn`'s docstring,
    ends with the values device-sized fields of `request_type` take when left out. Triggered
    by API clients only."""
    fields = inputs.inputs if isinstance(inputs, Form) else inputs
    if isinstance(inputs, Form):
        request_type = request_type or inputs.request_type
    description = inspect.getdoc(fn) or ""
    if request_type is not None and (sized := sized_defaults_text(request_type)):
        description = f"{description.strip()} {sized}".strip()
    for name, component in fields.items():
        describe_file(component, _help_of(inputs, name, component))
    twins = {name: twin(component, name) for name, component in outputs.items()}
    seconds = (gpu_duration or GPU_SECONDS) if gpu else 0
    handler = engine_handler(
        named(fn, fields, twins, track_tqdm, api_name, required, leave_out), seconds
    )
    settings = {**(model_event() if gpu else {}), "api_description": description, **options}
    return gr.Button(visible=False).click(
        handler,
        inputs=list(fields.values()),
        outputs=list(twins.values()),
        api_name=api_name,
        **settings,
    )


def _only(outputs: dict[str, Any], names: tuple[str, ...] | None) -> dict[str, Any]:
    return outputs if names is None else {name: outputs[name] for name in names}


def _required(inputs: Form | dict[str, Any]) -> list[str]:
    """The inputs a run cannot do without: declared `value(..., required=True)`."""
    if not isinstance(inputs, Form):
        return []
    specs = {f.name: spec for f, spec in declared_fields(inputs.request_type)}
    return [
        n for n in inputs.inputs if n in specs and specs[n].kind == VALUE and not specs[n].optional
    ]


def _help_of(inputs: Form | dict[str, Any], name: str, component: Any) -> str:
    if isinstance(inputs, Form):
        specs = {f.name: spec for f, spec in declared_fields(inputs.request_type)}
        if name in specs and specs[name].help:
            return specs[name].help
    return str(getattr(component, "label", "") or name)


def describe_file(component: Any, text: str) -> None:
    """On the API page a file parameter says `text` (with how to pass one), not Gradio's
    docstring of its FileData class. Other components are left as they are."""
    from gradio_client.utils import value_is_file

    schema = component.api_info() if hasattr(component, "api_info") else None
    if not schema or not value_is_file(schema):
        return
    described = {**schema, "additional_description": f"{text}; pass handle_file(path or URL)"}
    component.api_info = lambda: described


def _as_for(component: Any, value: Any) -> Any:
    """A metrics table's rows as the raw metrics where the output is the API's JSON twin."""
    if isinstance(value, MetricRows) and isinstance(component, gr.JSON):
        return json.loads(json.dumps(value.raw, default=str))  # as metrics.json has them
    return value


def twin(component: Any, name: str) -> Any:
    """A hidden copy of an output component labelled `name`, for the API (a State is shared:
    it is the session's, and API clients never see it). A metrics table's twin is JSON: the
    raw metrics, keys and numbers as in metrics.json."""
    if isinstance(component, gr.State):
        return component
    if isinstance(component, gr.Dataframe) and component.headers == METRIC_HEADERS:
        return gr.JSON(label=name, visible=False)
    kwargs = {
        **component.constructor_args,
        "label": name,
        "visible": False,
        "elem_id": None,
        "elem_classes": None,
        "render": True,
    }
    kwargs.pop("value", None)
    return type(component)(**kwargs)


def cancel_button(button: gr.Button, event, api_name: str) -> None:
    """`button` cancels `event`: Gradio ends it for the page at once, and the run itself stops
    at its next step (the button is UI-only; API clients cancel their job instead)."""

    def cancel_run(request: gr.Request) -> None:
        session = getattr(request, "session_hash", None) or "no-session"
        if RUNS.cancel(session, api_name, CANCEL_PRESSED):
            gr.Info("Cancelled: the run stops after its current step.")

    cancel_run.__name__ = f"cancel_{api_name}"
    button.click(cancel_run, None, None, cancels=[event], api_visibility="private")
