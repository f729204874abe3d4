"""A long run (GAN adaptation, NeRF fit or edit) live in a tab: its updates streamed into a
status line, a preview and a loss plot, Stop buttons that end it keeping the result so far, and
Cancel, a closed browser tab or a lost client that end it too."""

from __future__ import annotations

import functools
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from engines.base import Request, Result
from engines.interface import StudioInterface

from .forms import Call, connect


@dataclass(frozen=True)
class LossPlot:
    """A run's loss plot: `x` names the step in the history's rows, `terms` the losses drawn,
    with their legend names."""

    x: str
    terms: dict[str, str]

    def component(self, label: str) -> gr.LinePlot:
        return gr.LinePlot(x=self.x, y="value", color="loss", label=label)

    def frame(self, history: list[dict[str, float]]) -> pd.DataFrame:
        rows = [
            [row[self.x], self.terms[name], value]
            for row in history
            for name, value in row.items()
            if name in self.terms
        ]
        return pd.DataFrame(rows, columns=[self.x, "loss", "value"])


def stream(
    studio: StudioInterface,
    engine: str,
    request: Request,
    call: Call,
    plot: LossPlot,
    progress_bar: bool = False,
) -> Generator[dict[str, Any], None, Result]:
    """Start `request` on the engine's long runs and yield the tab's outputs as it goes
    (`run_id`, `status`, `preview`, `losses`); returns the result (`yield from`'s value).
    `progress_bar` also reports to the call's progress bar."""
    run = studio.engine(engine).start(request)
    call.on_cancel(run.cancel)  # at once, even if Gradio no longer resumes this generator
    try:
        for update in run:
            call.seen(update.fraction, update.message)  # the status line every tab shows
            if progress_bar:
                call.progress(update.fraction, update.message)
            shown: dict[str, Any] = {"run_id": run.id, "status": f"**{update.message}**"}
            if update.preview is not None:
                shown["preview"] = update.preview
            if update.history:
                shown["losses"] = plot.frame(update.history)
            yield shown
        return run.result()
    finally:
        run.cancel()  # no-op once finished


def wire_stop(
    studio: StudioInterface,
    engine: str,
    buttons: list[gr.Button],
    run_id: gr.State,
    statuses: list[gr.Markdown],
    *,
    api_name: str,
    doc: str,
    stopping: str,
    idle: str,
) -> None:
    """Stop buttons for a tab's long runs (one runs at a time): the engine ends the run in
    `run_id` after its current step, keeping the result; each status then says `stopping`,
    and `idle` is shown when nothing runs. `doc` describes the API endpoint."""

    def stop(values: dict[str, Any], call: Call) -> dict[str, Any]:
        if values["run_id"] and studio.engine(engine).cancel(values["run_id"]):
            return {f"status_{i}": f"**{stopping}**" for i in range(len(statuses))}
        gr.Info(idle)  # the last run's summary stays as it is
        return {}

    stop.__name__, stop.__doc__ = api_name, doc
    outputs = {f"status_{i}": status for i, status in enumerate(statuses)}
    trigger = functools.partial(gr.on, [button.click for button in buttons])
    # not in the GPU queue: it must run while the long run holds the GPU
    connect(trigger, stop, {"run_id": run_id}, outputs, api_name=api_name, gpu=False)
