"""GAN adaptation tab: pick a StyleGAN2, describe source and target, watch it adapt live."""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr
import pandas as pd

from engines.errors import InputError
from engines.gan.catalog import generator_choices
from engines.gan.history import loss_rows
from engines.gan.requests import AdaptRequest, SampleRequest
from engines.gan.settings import describe
from engines.studio import Studio

from .common import GPU_EVENT, engine_handler, gradio_progress, metrics_rows, recipe_file

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

METHODS = [("SVL: semantic variations", "svl"), ("StyleGAN-NADA", "nada")]
LOSS_COLUMNS = ["iteration", "loss", "value"]


def number(name: str, value) -> float:
    if value is None:
        raise InputError(f"{name} is empty; enter a number.")
    return float(value)


def loss_frame(history: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(loss_rows(history), columns=LOSS_COLUMNS)


def build(studio: Studio) -> None:
    choices = generator_choices(studio.registry)  # the engine (and torch) load on first use
    gr.Markdown(INTRO)
    run_id = gr.State("")
    with gr.Row():
        with gr.Column(scale=1):
            model = gr.Dropdown(
                [(f"{name}: {description}", name) for name, description in choices.items()],
                value="cat256" if "cat256" in choices else next(iter(choices), None),
                label="Pretrained generator",
            )
            source = gr.Textbox(label="Source text", value="photo", max_lines=1)
            target = gr.Textbox(
                label="Target text",
                placeholder="e.g. Van Gogh painting, Pixar character",
                max_lines=1,
            )
            method = gr.Radio(METHODS, value="svl", label="Method")
            iterations = gr.Slider(10, 2000, value=300, step=10, label="Iterations")
            seed = gr.Number(value=0, precision=0, label="Seed")
            with gr.Accordion("Advanced", open=False):
                batch = gr.Slider(2, 16, value=4, step=1, label="Batch (papers: SVL 4, NADA 2)")
                lr = gr.Number(value=0.002, label="Learning rate (Adam, betas 0 / 0.99)")
                preview_every = gr.Slider(1, 200, value=25, step=1, label="Preview every N steps")
                truncation = gr.Slider(0.1, 1.0, value=0.7, step=0.05, label="Truncation (grids)")
                train_truncation = gr.Slider(
                    0.1, 1.0, value=1.0, step=0.05, label="Truncation (training samples)"
                )
                grid_size = gr.Slider(1, 12, value=6, step=1, label="Grid seeds")
                eval_samples = gr.Slider(4, 256, value=16, step=4, label="Samples for metrics")
                second_clip = gr.Checkbox(
                    value=False, label="Add CLIP ViT-B/16 as a second critic (as NADA does)"
                )
                gr.Markdown("**StyleGAN-NADA**")
                layer_k = gr.Slider(
                    0, 17, value=0, step=1, label="Adaptive layer selection: k layers (0 = all)"
                )
                gr.Markdown("**SVL**")
                variations = gr.Slider(1, 16, value=6, step=1, label="Semantic variations K")
                lambda_div = gr.Number(value=1.0, label="lambda_div (stage 1)")
                stage1_iterations = gr.Slider(
                    0, 5000, value=2000, step=100, label="Stage 1 iterations"
                )
                lambda_cov = gr.Number(value=1e3, label="lambda_cov")
                lambda_ewc = gr.Number(value=1e7, label="lambda_EWC")
                lambda_rel = gr.Number(value=1e2, label="lambda_rel")
            with gr.Row():
                adapt_button = gr.Button("Adapt", variant="primary")
                stop_button = gr.Button("Stop (keeps the result so far)", variant="stop")
        with gr.Column(scale=2):
            status = gr.Markdown("")
            preview = gr.Image(label="Live preview: adapted generator, fixed seeds", type="pil")
            before_after = gr.Image(
                label="Before (top) and after (bottom), same W and noise", type="pil"
            )
            losses = gr.LinePlot(
                x="iteration", y="value", color="loss", label="Weighted loss terms"
            )
            metrics = gr.Dataframe(headers=["metric", "value"], label="Measured", interactive=False)
            with gr.Row():
                adapted_file = gr.File(label="Adapted generator ({'g_ema': ...} .pt)")
                recipe = gr.File(label="Recipe")
    with gr.Accordion("Sample more from an adapted generator", open=True):
        with gr.Row():
            checkpoint = gr.File(label="Adapted generator (.pt)", file_types=[".pt"])
            with gr.Column():
                sample_count = gr.Slider(1, 32, value=8, step=1, label="Samples")
                sample_seed = gr.Number(value=1, precision=0, label="Seed")
                sample_truncation = gr.Slider(0.1, 1.0, value=0.7, step=0.05, label="Truncation")
                sample_target = gr.Textbox(label="Score against text (optional)", max_lines=1)
                sample_button = gr.Button("Sample more")
        gallery = gr.Gallery(label="Samples", columns=4)
        sample_metrics = gr.Dataframe(
            headers=["metric", "value"], label="Measured", interactive=False
        )
        sample_recipe = gr.File(label="Recipe")

    @engine_handler
    def adapt_gan(
        model,
        source,
        target,
        method,
        iterations,
        seed,
        batch,
        lr,
        preview_every,
        truncation,
        train_truncation,
        grid_size,
        eval_samples,
        second_clip,
        layer_k,
        variations,
        lambda_div,
        stage1_iterations,
        lambda_cov,
        lambda_ewc,
        lambda_rel,
    ):
        request = AdaptRequest(
            source=source or "",
            target=target or "",
            model=model or "",
            method=method,
            iterations=int(iterations),
            seed=int(seed or 0),
            batch=int(batch),
            lr=number("lr", lr),
            preview_every=int(preview_every),
            truncation=float(truncation),
            train_truncation=float(train_truncation),
            grid_size=int(grid_size),
            eval_samples=int(eval_samples),
            second_clip=bool(second_clip),
            layer_k=int(layer_k),
            variations=int(variations),
            lambda_div=number("lambda_div", lambda_div),
            stage1_iterations=int(stage1_iterations),
            lambda_cov=number("lambda_cov", lambda_cov),
            lambda_ewc=number("lambda_ewc", lambda_ewc),
            lambda_rel=number("lambda_rel", lambda_rel),
        )
        run = studio.engine("gan").start(request)
        skip = gr.skip()
        try:
            for update in run:
                shown = loss_frame(update.history) if update.history else skip
                yield (
                    run.id,
                    f"**{describe(update)}**",
                    update.preview or skip,
                    skip,
                    shown,
                    skip,
                    skip,
                    skip,
                    skip,
                    skip,
                )
            result = run.result()
        finally:
            run.cancel()  # no-op once finished; stops the thread if the client went away
        folder = Path(tempfile.mkdtemp(prefix="zss-gan-"))
        weights = result.save_generator(folder / f"{request.model}-adapted.pt")
        state = "stopped early" if result.cancelled else "done"
        notes = "".join(f"\n\n_{note}_" for note in result.notes)
        yield (
            "",
            f"**{state}: {result.iterations_done}/{request.iterations} iterations.**{notes}",
            result.before_after.crop(
                (0, result.before_after.height // 2, *result.before_after.size)
            ),
            result.before_after,
            loss_frame(result.history),
            metrics_rows(result.metrics),
            str(weights),
            recipe_file(result),
            str(weights),
            request.target,
        )

    @engine_handler
    def stop_gan(current: str) -> str:
        if current and studio.engine("gan").cancel(current):
            return "**Stopping after this iteration; the result so far will be kept.**"
        return "Nothing is adapting."

    @engine_handler
    def sample_gan(
        checkpoint,
        count,
        seed,
        truncation,
        target,
        progress=gr.Progress(track_tqdm=True),  # noqa: B008
    ):
        path = checkpoint if isinstance(checkpoint, str) else getattr(checkpoint, "name", "")
        request = SampleRequest(
            checkpoint=path or "",
            count=int(count),
            seed=int(seed or 0),
            truncation=float(truncation),
            target=target or "",
        )
        result = studio.engine("gan").sample(request, gradio_progress(progress))
        return result.images, metrics_rows(result.metrics), recipe_file(result)

    adapt_button.click(
        adapt_gan,
        inputs=[
            model,
            source,
            target,
            method,
            iterations,
            seed,
            batch,
            lr,
            preview_every,
            truncation,
            train_truncation,
            grid_size,
            eval_samples,
            second_clip,
            layer_k,
            variations,
            lambda_div,
            stage1_iterations,
            lambda_cov,
            lambda_ewc,
            lambda_rel,
        ],
        outputs=[
            run_id,
            status,
            preview,
            before_after,
            losses,
            metrics,
            adapted_file,
            recipe,
            checkpoint,
            sample_target,
        ],
        api_name="adapt_gan",
        **GPU_EVENT,
    )
    stop_button.click(stop_gan, inputs=run_id, outputs=status, api_name="stop_gan")
    sample_button.click(
        sample_gan,
        inputs=[checkpoint, sample_count, sample_seed, sample_truncation, sample_target],
        outputs=[gallery, sample_metrics, sample_recipe],
        api_name="sample_gan",
        **GPU_EVENT,
    )
