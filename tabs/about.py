"""The About tab: what each capability is, what is the paper's and what is ours, the models
it uses (which are on this machine, and how to fetch the others), licences."""

from __future__ import annotations

import gradio as gr
from gradio.context import Context

from engines.capabilities import Capability
from engines.registry import Registry, override_variable

INTRO = """\
Zero-Shot Studio puts zero-shot generative methods side by side. Every method below comes from
a paper whose authors released no usable code or weights, so each engine is **our own
implementation** of the paper's method on public backbones. Models download on first use
(or ahead of time with `zsstudio download all`) and load only when their tab first runs.
Offline, point each model's variable at a local copy; `zsstudio models` lists them all.

**No output quality has been measured on real weights yet**: the project's machines reach
package registries only, so every figure so far comes from tiny random models or from the
released architectures with random weights (docs/measurements.md). The metrics each tab
shows are measured on your outputs, with the weights you run.
"""


def models_table(registry: Registry, engine: str) -> str:
    """The engine's models as a Markdown table: what each is for, where it comes from, its
    licence, and whether it is on this machine."""
    missing = {spec.key: why for spec, why in registry.missing(engine)}
    rows = [
        "| model | needed for | source | file | licence | on this machine |",
        "|---|---|---|---|---|---|",
    ]
    for spec in registry.components(engine):
        here = (
            "yes"
            if spec.key not in missing
            else f"**no**: set `{override_variable(engine, spec.name)}`"
        )
        rows.append(
            f"| `{spec.key}` | {spec.optional or 'every run'} | `{spec.source}` | {spec.files} "
            f"| {spec.license or 'see model card'} | {here} |"
        )
    if missing:
        rows.append(f"\nFetch the missing ones with `zsstudio download {engine}`.")
    return "\n".join(rows)


def about_markdown(capabilities: list[Capability], registry: Registry) -> str:
    parts = [INTRO]
    for cap in capabilities:
        parts.append(
            f"### {cap.title}\n"
            f"**Paper:** [{cap.paper}]({cap.paper_url})\n\n"
            f"**The paper's:** {cap.papers_part}\n\n"
            f"**Ours:** {cap.ours}\n\n"
            f"**Models:**\n\n{models_table(registry, cap.key)}"
        )
    return "\n\n".join(parts)


def build(capabilities: list[Capability], registry: Registry) -> None:
    text = gr.Markdown(about_markdown(capabilities, registry))
    # what is on this machine changes as models are fetched: read again at each page load
    Context.root_block.load(
        lambda: about_markdown(capabilities, registry),
        outputs=text,
        api_visibility="private",
        show_progress="hidden",
    )
