"""GAN adaptation tab: pick a StyleGAN2, describe source and target, watch it adapt live."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

from engines.capabilities import offered
from engines.fields import declaration
from engines.gan.catalog import generator_choices
from engines.gan.history import LOSS_LABELS
from engines.gan.requests import AdaptRequest, SampleRequest
from engines.interface import StudioInterface

from .common import (
    PIXELATED,
    RECIPE_LABEL,
    cpu_notice,
    intro,
    metrics_rows,
    metrics_table,
    recipe_file,
)
from .examples import examples
from .forms import Call, Form, connect, elem_id
from .live_run import LossPlot, stream, wire_stop

INTRO = """\
Adapt a pretrained StyleGAN2 to a new domain described only by text: no training images.
**SVL** is our implementation of *Improving Diversity in Zero-Shot GAN Adaptation with Semantic
Variations* (ICCV 2023; the paper released no code): stage 1 learns variations of the target
text in CLIP space, stage 2 trains a copy of the generator with a directional moment loss, EWC and
relation consistency. **StyleGAN-NADA** (CLIP directional loss) is offered for comparison. The
generator is a pure-PyTorch StyleGAN2 that reads the published rosinality checkpoints; CLIP is
OpenAI's ViT-B/32 through open_clip. Normalisations the paper leaves open are our choice (see
docs/gan.md). 300 iterations take about half a minute at 256 px and a minute and a half
at 1024 px on a recent data-centre GPU; on a CPU, tens of seconds per iteration.
"""

CPU_SLOW = (
    "an iteration takes tens of seconds, so the CPU-sized 6 iterations take about two "
    "minutes and the full 300, hours."
)
EXAMPLE_TEXTS = [  # source and target texts in the papers' style (any generator works)
    ["photo", "Van Gogh painting"],
    ["photo", "Pixar character"],
    ["photo", "pencil sketch"],
    ["photo", "Ukiyo-e woodblock print"],
    ["photo", "stained glass window"],
]
LOSSES = LossPlot("iteration", LOSS_LABELS)
ADVANCED = (
    "batch",
    "micro_batch",
    "lr",
    "preview_every",
    "truncation",
    "train_truncation",
    "grid_size",
    "eval_samples",
    "second_clip",
)
SVL_FIELDS = (
    "variations",
    "lambda_div",
    "stage1_iterations",
    "lambda_cov",
    "lambda_ewc",
    "lambda_rel",
)


# -- layout -----------------------------------------------------------------------------------


def _model_dropdown(studio: StudioInterface) -> gr.Dropdown:
    """The registry's generators (not a declared range: the registry lists them)."""
    choices = generator_choices(studio.registry)  # the engine (and torch) load on first use
    spec, default = declaration(AdaptRequest, "model")
    return gr.Dropdown(
        [(f"{name}: {description}", name) for name, description in choices.items()],
        value=default if default in choices else next(iter(choices), None),
        label=spec.label[:1].upper() + spec.label[1:],
        info=spec.help,
        elem_id=elem_id(AdaptRequest, "model"),
    )


def _adapt_form(studio: StudioInterface) -> Form:
    """The adaptation's inputs, in the order of the adapt_gan API's parameters."""
    form = Form(AdaptRequest)
    form.add("model", _model_dropdown(studio))
    form("source")
    form("target", placeholder="e.g. Van Gogh painting, Pixar character")
    form("method")
    form("iterations")
    form("seed")
    with gr.Accordion("Advanced", open=False):
        for name in ADVANCED:
            form(name)
        gr.Markdown("**StyleGAN-NADA**")
        form("layer_k")
        gr.Markdown("**SVL**")
        for name in SVL_FIELDS:
            form(name)
    return form


def _adapt_outputs() -> dict[str, Any]:
    """What an adaptation shows, in the order of the adapt_gan API's outputs."""
    status = gr.Markdown("", label="Status")
    preview = gr.Image(
        label="Live preview: adapted generator, fixed seeds",
        type="pil",
        elem_classes=PIXELATED,
    )
    before_after = gr.Image(
        label="Before (top) and after (bottom), same W and noise",
        type="pil",
        elem_classes=PIXELATED,
    )
    losses = LOSSES.component("Weighted loss terms")
    metrics = metrics_table("Measured")
    with gr.Row():
        adapted_file = gr.File(label="Adapted generator (.pt: sample it below or with zsstudio)")
        recipe = gr.File(label=RECIPE_LABEL, interactive=False)
    return {
        "status": status,
        "preview": preview,
        "before_after": before_after,
        "losses": losses,
        "metrics": metrics,
        "adapted_file": adapted_file,
        "recipe": recipe,
    }


def _sample_section() -> tuple[Form, dict[str, Any], gr.Button]:
    form = Form(SampleRequest)
    with gr.Row():
        form.add(
            "checkpoint",
            gr.File(
                label="Adapted generator (.pt)",
                file_types=[".pt"],
                elem_id=elem_id(SampleRequest, "checkpoint"),
            ),
        )
        with gr.Column():
            for name in ("count", "seed", "truncation", "target"):
                form(name)
            button = gr.Button("Sample more")
    outputs = {
        "gallery": gr.Gallery(label="Samples", columns=4),
        "metrics": metrics_table("Measured"),
        "recipe": gr.File(label=RECIPE_LABEL, interactive=False),
    }
    return form, outputs, button


# -- handlers ---------------------------------------------------------------------------------


def _finished(result, request: AdaptRequest, call: Call) -> dict[str, Any]:
    """The outputs of a finished (or stopped) adaptation; its files go to the run's folder."""
    folder = call.folder()
    weights = str(result.save_generator(folder / f"{request.model}-adapted.pt"))
    state = "stopped early" if result.cancelled else "done"
    notes = "".join(f"\n\n_{note}_" for note in result.notes)
    grid = result.before_after
    return {
        "run_id": "",
        "status": f"**{state}: {result.iterations_done}/{result.recipe.params['iterations']} iterations.**{notes}",
        "preview": grid.crop((0, grid.height // 2, *grid.size)),
        "before_after": grid,
        "losses": LOSSES.frame(result.history),
        "metrics": metrics_rows(result),
        "adapted_file": weights,
        "recipe": recipe_file(result, folder),
        "checkpoint": weights,
        "sample_target": request.target,
    }


def handlers(studio: StudioInterface):
    """adapt_gan (streams updates) and sample_gan, on the studio's GAN engine."""

    def adapt_gan(values: dict[str, Any], call: Call) -> Iterator[dict[str, Any]]:
        """Adapt a StyleGAN2 from a source text to a target text; streams progress."""
        request = AdaptRequest(**values)
        result = yield from stream(studio, "gan", request, call, LOSSES)
        yield _finished(result, request, call)

    def sample_gan(values: dict[str, Any], call: Call) -> dict[str, Any]:
        """Sample images from an adapted generator file."""
        result = studio.engine("gan").run(SampleRequest(**values), call.progress)
        return {
            "gallery": result.images,
            "metrics": metrics_rows(result),
            "recipe": recipe_file(result, call.folder()),
        }

    return adapt_gan, sample_gan


def build(studio: StudioInterface) -> None:
    intro(INTRO)
    notice = gr.Markdown(visible=False)
    run_id = gr.State("")
    with gr.Row(render=False) as work:  # shown under the examples
        with gr.Column(scale=1):
            form = _adapt_form(studio)
            with gr.Row():
                adapt_button = gr.Button("Adapt", variant="primary")
                stop_button = gr.Button("Stop (keeps the result so far)", variant="stop")
        with gr.Column(scale=2):
            shown = _adapt_outputs()
    examples(EXAMPLE_TEXTS, [form.inputs["source"], form.inputs["target"]], "Adapt")
    work.render()
    with gr.Accordion("Sample more from an adapted generator", open=True):
        sample_form, sample_outputs, sample_button = _sample_section()

    adapt_gan, sample_gan = handlers(studio)
    adapt_outputs = {
        "run_id": run_id,
        **shown,
        "checkpoint": sample_form.inputs["checkpoint"],
        "sample_target": sample_form.inputs["target"],
    }
    connect(
        adapt_button.click,
        adapt_gan,
        form,
        adapt_outputs,
        api_name="adapt_gan",
        api_outputs=("run_id", *shown),  # not the sample form's inputs it also fills in
        gpu_duration=offered("gan").long_run_gpu_seconds,
    )
    wire_stop(
        studio,
        "gan",
        [stop_button],
        run_id,
        [shown["status"]],
        api_name="stop_gan",
        doc="Stop this session's adaptation after its current iteration, keeping the result.",
        stopping="Stopping after this iteration; the result so far will be kept.",
        idle="Nothing is adapting.",
    )
    connect(
        sample_button.click,
        sample_gan,
        sample_form,
        sample_outputs,
        api_name="sample_gan",
        gpu_duration=offered("gan").gpu_seconds,
    )
    cpu_notice(studio, notice, form, CPU_SLOW, "gan")
