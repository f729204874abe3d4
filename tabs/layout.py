"""The Layout to image tab: draw boxes, label each with a phrase of the prompt, generate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
from gradio_image_annotation import image_annotator

from engines.layout.request import MAX_BOXES, LayoutRequest, suggested_labels
from engines.studio import Studio

from .canvas import blank_canvas, canvas_boxes, canvas_value, resized_canvas
from .common import RECIPE_LABEL, cpu_notice, intro, metrics_rows, recipe_file
from .forms import Call, Form, connect

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
CPU_SLOW = "a 256 px, 20-step image takes a minute or two; 512 px with 50 steps, about six minutes."
GPU_SECONDS = 120
SCORE_HEADERS = ["box", "phrase", "box (x0, y0, x1, y1)", "detected", "detector score", "IoU"]

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


def make_request(values: dict[str, Any]) -> LayoutRequest:
    """The request from the tab's values by name: the canvas boxes, scaled to the output size
    once the size itself has been checked."""
    fields = {k: v for k, v in values.items() if k not in ("phrases", "canvas")}
    request = LayoutRequest(**fields, box_units="pixels")
    request.validate()
    request.boxes = canvas_boxes(values.get("canvas"), request.width, request.height)
    return request


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


def build_inputs() -> Form:
    form = Form(LayoutRequest)
    form("prompt", lines=2, max_lines=4, placeholder="a photo of a cat and a dog on a sofa")
    form.add(
        "phrases",
        gr.Textbox(
            label="Box labels",
            placeholder="a cat, a dog",
            info="Phrases of the prompt, comma-separated; offered as labels when you draw.",
        ),
    )
    default = LayoutRequest()
    form.add(
        "canvas",
        image_annotator(
            value=canvas_value(blank_canvas(default.width, default.height), []),
            label=f"Layout: draw up to {MAX_BOXES} boxes, label each with a phrase",
            label_list=[],
            image_type="numpy",
            sources=[],
            show_clear_button=False,
            show_download_button=False,
            box_min_size=8,
        ),
    )
    with gr.Accordion("Advanced settings", open=False):
        form("negative_prompt")
        rows = (
            ("width", "height"),
            ("steps", "guidance_scale"),
            ("seed", "backbone"),
            ("strength", "guided_fraction"),
            ("iterations", "loss_threshold"),
            ("weight_inside", "weight_outside", "weight_boundary"),
            ("self_attention", "score"),
        )
        for row in rows:
            with gr.Row():
                for name in row:
                    form(name)
    return form


def build_outputs() -> dict[str, Any]:
    return {
        "image": gr.Image(label="Image", type="pil", format="png"),
        "overlay": gr.Image(label="Image with boxes", type="pil", format="png"),
        "heatmaps": gr.Gallery(label="Attention per phrase (end of guidance)", columns=4),
        "scores": gr.Dataframe(headers=SCORE_HEADERS, label="Layout score per box"),
        "metrics": gr.Dataframe(headers=["metric", "value"], label="Metrics"),
        "recipe": gr.File(label=RECIPE_LABEL, interactive=False),
    }


def wire_canvas(form: Form) -> None:
    """Labels follow the prompt and the typed phrases; the canvas follows the output size."""
    prompt, phrases, canvas = (form.inputs[n] for n in ("prompt", "phrases", "canvas"))

    def set_labels(prompt_text: str, phrase_text: str, value: dict | None):
        return image_annotator(value=value, label_list=suggested_labels(prompt_text, phrase_text))

    for box_name, box in (("prompt", prompt), ("phrases", phrases)):
        box.blur(
            set_labels, [prompt, phrases, canvas], canvas, api_name=f"layout_labels_{box_name}"
        )
    width, height = form.inputs["width"], form.inputs["height"]
    for name, slider in (("width", width), ("height", height)):
        slider.release(
            resized_canvas, [canvas, width, height], canvas, api_name=f"layout_canvas_{name}"
        )


def build(studio: Studio) -> None:
    intro(INTRO)
    notice = gr.Markdown(visible=False)
    with gr.Row():
        with gr.Column(scale=1):
            form = build_inputs()
            with gr.Row():
                run = gr.Button("Generate", variant="primary")
                cancel = gr.Button("Cancel", variant="stop")
        with gr.Column(scale=1):
            outputs = build_outputs()
    gr.Examples(
        example_rows(),
        inputs=[form.inputs["prompt"], form.inputs["phrases"], form.inputs["canvas"]],
        cache_examples=False,
    )
    wire_canvas(form)
    cpu_notice(studio, notice, form, CPU_SLOW)

    def layout_to_image(values: dict[str, Any], call: Call) -> dict[str, Any]:
        result = studio.engine("layout").run(make_request(values), call.progress)
        return {
            "image": result.image,
            "overlay": result.overlay,
            "heatmaps": result.heatmaps,
            "scores": score_rows(result),
            "metrics": metrics_rows(result.metrics),
            "recipe": recipe_file(result, call.folder()),
        }

    connect(
        run.click,
        layout_to_image,
        form.inputs,
        outputs,
        api_name="layout_to_image",
        cancel=cancel,
        gpu_duration=GPU_SECONDS,
    )
