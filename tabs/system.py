"""The System panel: device, what is running, loaded engines and their memory (on Ray Serve:
the deployments and their replicas' states), as a table; release an engine picked from a list. API clients get the same as JSON (`/system_status`,
`/release_engine`)."""

from __future__ import annotations

import time
from typing import Any

import gradio as gr

from engines.capabilities import keys
from engines.interface import StudioInterface
from engines.low_memory import describe_line

from .common import api_only, engine_handler
from .running_calls import RUNS

HEADERS = ["", "now"]
LIVE_EVERY_S = 1.0
"""How often a visible page refreshes the busy line and the System panel."""
PAGE_VISIBLE = "(visible) => !document.hidden"
"""Runs in the page before each refresh: a hidden page (another browser tab in front) asks
the server for nothing."""


def busy_text(status: dict[str, Any], reports: list[tuple[str, Any]]) -> str:
    """One line while a run holds the models: the engine and its last progress report ("" when
    nothing runs)."""
    engine = status.get("busy")
    if not engine and not reports:
        return ""
    what = ""
    if reports:
        api_name, seen = reports[0]
        engine = engine or api_name
        percent = f" ({seen.fraction:.0%})" if seen.fraction else ""
        what = f", {seen.message}{percent}" if seen.message else percent
    return f"**busy:** {engine}{what}. Runs started meanwhile wait their turn."


def busy_line() -> gr.Markdown:
    """The line at the top of the page, above every tab; filled in by `build`."""
    return gr.Markdown("", visible=False, elem_id="zss-busy", elem_classes="zss-busy")


def status_rows(status: dict[str, Any]) -> list[list[str]]:
    """The status as rows a person reads: one line per fact, one per loaded engine."""
    rows = [
        ["device", status["device"]],
        ["running now", status.get("busy") or "nothing"],
    ]
    if status.get("release_pending"):
        rows.append(["released when the run ends", ", ".join(status["release_pending"])])
    for name, entry in (status.get("deployments") or {}).items():  # on Ray Serve
        replicas = ", ".join(f"{n} {state.lower()}" for state, n in entry["replicas"].items())
        rows.append([f"deployment: {name}", f"{entry['status'].lower()}; replicas: {replicas}"])
    loaded = status.get("loaded") or {}
    for name, entry in loaded.items():
        minutes = entry["loaded_for_s"] / 60
        rows.append(
            [
                f"loaded: {name}",
                f"{entry['weights_mb']:,.0f} MB of weights ({', '.join(entry['components'])}), "
                f"for {minutes:.0f} min",
            ]
        )
    if not loaded and "deployments" not in status:
        rows.append(["loaded", "no engine (models load on a tab's first run)"])
    if "gpu_total_mb" in status:
        rows.append(
            [
                "GPU memory",
                f"{status['gpu_allocated_mb']:,.0f} MB in use by the studio, "
                f"{status['gpu_free_mb']:,.0f} of {status['gpu_total_mb']:,.0f} MB free",
            ]
        )
    if "low_memory" in status:
        rows.append(["low memory", describe_line(status["low_memory"])])
    if "process_peak_rss_mb" in status:
        rows.append(["memory (peak)", f"{status['process_peak_rss_mb']:,.0f} MB"])
    rows.append(["version", status.get("version", "")])
    rows.append(["as of", time.strftime("%H:%M:%S")])
    return rows


def build(studio: StudioInterface, demo: gr.Blocks, busy: gr.Markdown | None = None) -> None:
    engines = ["all"] + keys()
    with gr.Accordion("System", open=False):
        table = gr.Dataframe(
            headers=HEADERS,
            label="Device, loaded engines and memory",
            interactive=False,
            elem_id="system-status",
        )
        with gr.Row():
            refresh = gr.Button("Refresh", size="sm")
            engine = gr.Dropdown(engines, value="all", label="Engine to release", scale=2)
            release = gr.Button("Release", size="sm", variant="stop")

    @engine_handler
    def system_status() -> dict:
        """The device, the engine running now, the loaded engines and their weights' memory,
        releases waiting for a run to end, and the device's memory figures."""
        return studio.status()

    @engine_handler
    def release_engine(engine: str) -> dict:
        """Release an engine's models (`all` for every engine); returns the status after. An
        engine in use is released when its run ends."""
        return studio.release(engine)

    def show_status() -> list[list[str]]:
        return status_rows(studio.status())

    def release_and_show(name: str) -> list[list[str]]:
        status = release_engine(name)
        if status["release_pending"]:
            gr.Info("A run is using the models: they are released when it ends.")
        return status_rows(status)

    api_only(system_status, "system_status", {}, "status", queue=False)
    api_only(
        release_engine,
        "release_engine",
        {"engine": f"Engine to release: all, or one of {', '.join(engines[1:])}"},
        "status",
    )
    private = {"api_visibility": "private", "queue": False}
    refresh.click(show_status, outputs=table, **private)
    demo.load(show_status, outputs=table, show_progress="hidden", **private)
    live(studio, table, busy)
    release.click(release_and_show, inputs=engine, outputs=table, api_visibility="private")


def live(studio: StudioInterface, table: gr.Dataframe, busy: gr.Markdown | None) -> None:
    """While the page is visible, the System panel and the busy line refresh every
    LIVE_EVERY_S (a run started in any session shows at once, and goes when it ends)."""
    visible = gr.Checkbox(value=True, visible=False)
    outputs = [table] + ([busy] if busy is not None else [])

    def refresh(page_visible: bool):
        if not page_visible:
            return [gr.skip() for _ in outputs]
        status = studio.status()
        shown = [status_rows(status)]
        if busy is not None:
            text = busy_text(status, RUNS.progress())
            shown.append(gr.update(value=text, visible=bool(text)))
        return shown

    timer = gr.Timer(LIVE_EVERY_S)
    timer.tick(
        refresh,
        inputs=visible,
        outputs=outputs,
        js=PAGE_VISIBLE,
        api_visibility="private",
        queue=False,
        show_progress="hidden",
    )
