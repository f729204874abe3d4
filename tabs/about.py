"""The About tab: what each capability is, what is the paper's and what is ours, licences."""

from __future__ import annotations

import gradio as gr

from engines.capabilities import Capability
from engines.registry import Registry

INTRO = """\
Zero-Shot Studio puts zero-shot generative methods side by side. Every method below comes from
a paper whose authors released no usable code or weights, so each engine is **our own
implementation** of the paper's method on public backbones. Models download on first use
(or ahead of time with `zsstudio download all`) and load only when their tab first runs.
"""


def about_markdown(capabilities: list[Capability], registry: Registry) -> str:
    parts = [INTRO]
    for cap in capabilities:
        licences = [
            f"`{spec.source}` ({spec.license or 'licence: see model card'})"
            for spec in registry.components(cap.key)
        ]
        parts.append(
            f"### {cap.title}\n"
            f"**Paper:** [{cap.paper}]({cap.paper_url})\n\n"
            f"**The paper's:** {cap.papers_part}\n\n"
            f"**Ours:** {cap.ours}\n\n"
            f"**Models it downloads:** {'; '.join(licences) or 'none'}"
        )
    if not capabilities:
        parts.append("_No capability is built into this copy yet._")
    return "\n\n".join(parts)


def build(capabilities: list[Capability], registry: Registry) -> None:
    gr.Markdown(about_markdown(capabilities, registry))
