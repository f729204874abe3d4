"""The System panel: device, loaded engines and their memory; release an engine."""

from __future__ import annotations

import gradio as gr

from engines.studio import Studio

from .common import engine_handler


def build(studio: Studio, demo: gr.Blocks) -> None:
    with gr.Accordion("System", open=False):
        status = gr.JSON(label="Device, loaded engines and memory")
        with gr.Row():
            refresh = gr.Button("Refresh", size="sm")
            engine_name = gr.Textbox(
                label="Engine to release", placeholder="all", scale=2, max_lines=1
            )
            release = gr.Button("Release", size="sm", variant="stop")

    @engine_handler
    def system_status() -> dict:
        return studio.status()

    @engine_handler
    def release_engine(name: str) -> dict:
        name = (name or "").strip()
        studio.manager.release(None if name in ("", "all") else name)
        status = studio.status()
        if status["release_pending"]:
            gr.Info("A run is using the models: they are released when it ends.")
        return status

    refresh.click(system_status, outputs=status, api_name="system_status")
    demo.load(system_status, outputs=status, api_visibility="private", show_progress="hidden")
    release.click(release_engine, inputs=engine_name, outputs=status, api_name="release_engine")
