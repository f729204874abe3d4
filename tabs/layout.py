"""The Layout to image tab: draw boxes, label each with a phrase of the prompt, generate."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from gradio_image_annotation import image_annotator
from PIL import Image, ImageDraw

from engines.layout.request import (
    BACKBONES,
    GUIDANCE_SCALE_RANGE,
    ITERATIONS_RANGE,
    MAX_BOXES,
    STEPS_RANGE,
    LayoutRequest,
    PhraseBox,
)
from engines.studio import Studio

from .common import GPU_EVENT, engine_handler, gradio_progress, metrics_rows, recipe_file

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "layout"
DEFAULT = LayoutRequest()
INTRO = """\
**BACON-style layout to image** on Stable Diffusion, no fine-tuning. Draw up to 8 boxes on the
canvas and label each with a phrase that appears in the prompt. During the first denoising
steps the latent is nudged so each phrase's cross-attention (aggregated through
self-attention) fills its box: attention mass inside, little leakage outside, and its extent
meeting the box edges. The paper (BACON) released no code: layers, loss weights and schedule
are **ours**, set after its open relatives (layout guidance, BoxDiff, R&B). The layout score
is the IoU of each box with Grounding DINO's best detection of its phrase.
"""
SCORE_HEADERS = ["box", "phrase", "box (x0, y0, x1, y1)", "detected", "detector score", "IoU"]
STOPWORDS = {"a", "an", "the", "and", "of", "on", "in", "at", "with", "by", "to", "next", "over"}

EXAMPLES: list[dict[str, Any]] = [
    {
        "prompt": "a photo of a cat and a dog sitting on a sofa",
        "boxes": [("a cat", 40, 170, 240, 470), ("a dog", 270, 130, 490, 470)],
    },
    {
        "prompt": "a red apple and a green pear on a wooden table, studio light",
        "boxes": [("red apple", 60, 240, 230, 400), ("green pear", 300, 180, 450, 400)],
    },
    {
        "prompt": "a hot air balloon above a lighthouse by the sea at sunset",
        "boxes": [("hot air balloon", 170, 20, 350, 200), ("lighthouse", 210, 250, 310, 500)],
    },
    {
        "prompt": "two teddy bears on a bed, a lamp on the wall",
        "boxes": [
            ("teddy bears", 40, 260, 230, 480),
            ("teddy bears", 280, 260, 470, 480),
            ("lamp", 360, 40, 460, 180),
        ],
    },
]


def blank_canvas(width: int, height: int) -> np.ndarray:
    """A light grid to draw on, the size of the output image."""
    image = Image.new("RGB", (int(width), int(height)), (250, 250, 252))
    draw = ImageDraw.Draw(image)
    for x in range(0, int(width), 64):
        draw.line([(x, 0), (x, height)], fill=(225, 228, 235))
    for y in range(0, int(height), 64):
        draw.line([(0, y), (width, y)], fill=(225, 228, 235))
    return np.asarray(image)


def label_choices(prompt: str, phrases: str) -> list[str]:
    """Labels offered when drawing: the phrases typed, else the prompt's content words."""
    typed = [p.strip() for p in (phrases or "").split(",") if p.strip()]
    if typed:
        return list(dict.fromkeys(typed))
    words = re.findall(r"[^\W_]+", (prompt or "").lower())
    return list(dict.fromkeys(w for w in words if w not in STOPWORDS))


def canvas_value(image: np.ndarray, boxes) -> dict[str, Any]:
    return {
        "image": image,
        "boxes": [
            {"label": label, "xmin": x0, "ymin": y0, "xmax": x1, "ymax": y1}
            for label, x0, y0, x1, y1 in boxes
        ],
    }


def _image_hw(image, default: tuple[int, int]) -> tuple[int, int]:
    if image is None:
        return default
    if isinstance(image, (str, Path)):
        with Image.open(image) as opened:
            return opened.height, opened.width
    return tuple(np.asarray(image).shape[:2])


def canvas_boxes(canvas: dict | None, width: int, height: int) -> list[PhraseBox]:
    """The drawn boxes in pixels of the output: the canvas may be another size than the output
    (an example, or sliders moved since drawing), so boxes scale with it."""
    if not canvas:
        return []
    canvas_h, canvas_w = _image_hw(canvas.get("image"), (height, width))
    sx, sy = width / canvas_w, height / canvas_h
    return [
        PhraseBox(
            str(box.get("label") or ""),
            box["xmin"] * sx,
            box["ymin"] * sy,
            box["xmax"] * sx,
            box["ymax"] * sy,
        )
        for box in canvas.get("boxes") or []
    ]


def resized_canvas(canvas: dict | None, width: int, height: int) -> dict[str, Any]:
    """A blank canvas of the new output size, carrying the boxes over, scaled."""
    boxes = canvas_boxes(canvas, int(width), int(height))
    return canvas_value(
        blank_canvas(int(width), int(height)),
        [(b.phrase, round(b.x0), round(b.y0), round(b.x1), round(b.y1)) for b in boxes],
    )


def example_rows() -> list[list[Any]]:
    canvas = str(ASSETS / "canvas-512x512.png")
    return [
        [
            ex["prompt"],
            ", ".join(dict.fromkeys(b[0] for b in ex["boxes"])),
            canvas_value(canvas, ex["boxes"]),
        ]
        for ex in EXAMPLES
    ]


def make_request(
    prompt,
    canvas,
    negative,
    width,
    height,
    steps,
    cfg,
    seed,
    backbone,
    strength,
    fraction,
    iterations,
    threshold,
    w_in,
    w_out,
    w_bd,
    self_attention,
    score,
) -> LayoutRequest:
    width, height = int(width), int(height)
    return LayoutRequest(
        prompt=prompt or "",
        boxes=canvas_boxes(canvas, width, height),
        box_units="pixels",
        negative_prompt=negative or "",
        width=width,
        height=height,
        steps=int(steps),
        guidance_scale=float(cfg),
        seed=int(seed),
        strength=float(strength),
        guided_fraction=float(fraction),
        iterations=int(iterations),
        loss_threshold=float(threshold),
        weight_inside=float(w_in),
        weight_outside=float(w_out),
        weight_boundary=float(w_bd),
        self_attention=bool(self_attention),
        score=bool(score),
        backbone=backbone,
    )


def score_rows(result) -> list[list[Any]]:
    def fmt(box):
        return "not found" if box is None else ", ".join(f"{c:.0f}" for c in box)

    return [
        [
            index,
            s.phrase,
            fmt(s.box),
            fmt(s.detected),
            "" if s.detection_score is None else round(s.detection_score, 3),
            round(s.iou, 3),
        ]
        for index, s in enumerate(result.scores, start=1)
    ]


def build(studio: Studio) -> None:
    gr.Markdown(INTRO)
    with gr.Row():
        with gr.Column(scale=1):
            prompt = gr.Textbox(
                label="Prompt", lines=2, placeholder="a photo of a cat and a dog on a sofa"
            )
            phrases = gr.Textbox(
                label="Box labels",
                placeholder="a cat, a dog",
                info="Phrases of the prompt, comma-separated; offered as labels when you draw.",
            )
            canvas = image_annotator(
                value=canvas_value(blank_canvas(DEFAULT.width, DEFAULT.height), []),
                label=f"Layout: draw up to {MAX_BOXES} boxes, label each with a phrase",
                label_list=[],
                image_type="numpy",
                sources=[],
                show_clear_button=False,
                show_download_button=False,
                box_min_size=8,
            )
            with gr.Accordion("Advanced settings", open=False):
                negative = gr.Textbox(label="Negative prompt", value=DEFAULT.negative_prompt)
                with gr.Row():
                    width = gr.Slider(64, 1024, DEFAULT.width, step=64, label="Width")
                    height = gr.Slider(64, 1024, DEFAULT.height, step=64, label="Height")
                with gr.Row():
                    steps = gr.Slider(*STEPS_RANGE, DEFAULT.steps, step=1, label="Steps")
                    cfg = gr.Slider(
                        *GUIDANCE_SCALE_RANGE,
                        DEFAULT.guidance_scale,
                        step=0.5,
                        label="Guidance scale (CFG)",
                    )
                with gr.Row():
                    seed = gr.Number(DEFAULT.seed, precision=0, minimum=0, label="Seed")
                    backbone = gr.Dropdown(
                        list(BACKBONES), value=DEFAULT.backbone, label="Backbone"
                    )
                with gr.Row():
                    strength = gr.Slider(
                        0, 200, DEFAULT.strength, step=1, label="Guidance strength (0: off)"
                    )
                    fraction = gr.Slider(
                        0, 1, DEFAULT.guided_fraction, step=0.05, label="Guided fraction of steps"
                    )
                with gr.Row():
                    iterations = gr.Slider(
                        *ITERATIONS_RANGE, DEFAULT.iterations, step=1, label="Updates per step"
                    )
                    threshold = gr.Slider(
                        0, 1, DEFAULT.loss_threshold, step=0.01, label="Stop below loss"
                    )
                with gr.Row():
                    w_in = gr.Slider(0, 5, DEFAULT.weight_inside, step=0.1, label="Weight: inside")
                    w_out = gr.Slider(
                        0, 5, DEFAULT.weight_outside, step=0.1, label="Weight: outside"
                    )
                    w_bd = gr.Slider(
                        0, 5, DEFAULT.weight_boundary, step=0.1, label="Weight: boundary"
                    )
                with gr.Row():
                    self_attention = gr.Checkbox(
                        DEFAULT.self_attention, label="Aggregate maps through self-attention"
                    )
                    score = gr.Checkbox(DEFAULT.score, label="Layout score (Grounding DINO)")
            run = gr.Button("Generate", variant="primary")
        with gr.Column(scale=1):
            image = gr.Image(label="Image", type="pil", format="png")
            overlay = gr.Image(label="Image with boxes", type="pil", format="png")
            heatmaps = gr.Gallery(label="Attention per phrase (end of guidance)", columns=4)
            scores = gr.Dataframe(headers=SCORE_HEADERS, label="Layout score per box")
            metrics = gr.Dataframe(headers=["metric", "value"], label="Metrics")
            recipe = gr.File(label="Recipe (zsstudio run recipe.json)")

    gr.Examples(example_rows(), inputs=[prompt, phrases, canvas], cache_examples=False)

    def set_labels(prompt_text: str, phrase_text: str, value: dict | None):
        return image_annotator(value=value, label_list=label_choices(prompt_text, phrase_text))

    for box_name, box in (("prompt", prompt), ("phrases", phrases)):
        box.blur(
            set_labels, [prompt, phrases, canvas], canvas, api_name=f"layout_labels_{box_name}"
        )
    for name, slider in (("width", width), ("height", height)):
        slider.release(
            resized_canvas, [canvas, width, height], canvas, api_name=f"layout_canvas_{name}"
        )

    @engine_handler
    def layout_to_image(
        prompt_text,
        phrase_text,
        canvas_value_,
        negative_text,
        width_px,
        height_px,
        n_steps,
        cfg_scale,
        seed_value,
        backbone_name,
        strength_value,
        fraction_value,
        n_iterations,
        threshold_value,
        weight_in,
        weight_out,
        weight_bd,
        use_self_attention,
        use_score,
        progress=gr.Progress(track_tqdm=True),  # noqa: B008 (how gradio injects progress)
    ):
        request = make_request(
            prompt_text,
            canvas_value_,
            negative_text,
            width_px,
            height_px,
            n_steps,
            cfg_scale,
            seed_value,
            backbone_name,
            strength_value,
            fraction_value,
            n_iterations,
            threshold_value,
            weight_in,
            weight_out,
            weight_bd,
            use_self_attention,
            use_score,
        )
        result = studio.engine("layout").run(request, gradio_progress(progress))
        return (
            result.image,
            result.overlay,
            result.heatmaps,
            score_rows(result),
            metrics_rows(result.metrics),
            recipe_file(result),
        )

    run.click(
        layout_to_image,
        inputs=[
            prompt,
            phrases,
            canvas,
            negative,
            width,
            height,
            steps,
            cfg,
            seed,
            backbone,
            strength,
            fraction,
            iterations,
            threshold,
            w_in,
            w_out,
            w_bd,
            self_attention,
            score,
        ],
        outputs=[image, overlay, heatmaps, scores, metrics, recipe],
        api_name="layout_to_image",
        **GPU_EVENT,
    )
