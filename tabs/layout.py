"""The Layout to image tab: draw boxes, label each with a phrase of the prompt, generate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
from gradio_image_annotation import image_annotator

from engines.capabilities import offered
from engines.errors import InputError
from engines.interface import StudioInterface
from engines.layout.requests import MAX_BOXES, LayoutRequest, suggested_labels

from .canvas import (
    boxes_in_example_thumbnails,
    canvas_boxes,
    canvas_for,
    canvas_value,
    resized_canvas,
    too_many_boxes,
)
from .common import (
    RECIPE_LABEL,
    cpu_notice,
    intro,
    metrics_rows,
    metrics_table,
    recipe_file,
)
from .examples import examples
from .forms import Call, Form, connect

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "layout"
DEFAULT_SIZE = (512, 512)  # the canvas's first grid; it follows the size fields from then on
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
SCORE_HEADERS = ["box", "phrase", "IoU", "detector score", "drawn (x0, y0, x1, y1)", "detected"]
BOXES_HELP = (
    "Boxes: a list of {phrase, x0, y0, x1, y1} in pixels of the output, top left then bottom "
    f"right; at most {MAX_BOXES}, each phrase words of the prompt"
)

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


NO_PHRASE = "choose a phrase…"
"""The canvas's first label. The annotator's label picker always preselects its first label
for a new box (it has no option not to), so that label is this one: a box keeps it until the
user picks a phrase, and Generate refuses it naming the box."""


def offered_labels(prompt: str, phrases: str) -> list[str]:
    """The labels the canvas offers: NO_PHRASE, then the typed phrases or the prompt's noun
    phrases (none at all before there is a prompt: the user types a label)."""
    suggested = suggested_labels(prompt, phrases)
    return [NO_PHRASE, *suggested] if suggested else []


def check_phrases_chosen(boxes: list, phrases: list[str]) -> None:
    """InputError naming the first box left without a phrase (or with NO_PHRASE), and the
    phrases it can have."""
    for index, box in enumerate(boxes, start=1):
        if box.phrase.strip() in ("", NO_PHRASE):
            pick = f"pick one of: {', '.join(phrases)}" if phrases else "type words of the prompt"
            raise InputError(f"Box {index} has no phrase; double-click it and {pick}.")


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


def make_request(values: dict[str, Any], accelerator: bool | None = None) -> LayoutRequest:
    """The request from the tab's values by name: the canvas boxes, scaled to the output size
    once the size itself has been checked (a size box left empty takes the value of the
    device, on an `accelerator` or not, as on the API)."""
    fields = {k: v for k, v in values.items() if k not in ("phrases", "canvas")}
    request = LayoutRequest(**fields, box_units="pixels")
    if accelerator is not None:
        request.size_for(accelerator)
    request.validate()
    request.boxes = canvas_boxes(values.get("canvas"), request.width, request.height)
    check_phrases_chosen(request.boxes, suggested_labels(request.prompt, values.get("phrases")))
    return request


def api_request(values: dict[str, Any]) -> LayoutRequest:
    """The request from the API's plain values: boxes as {phrase, x0, y0, x1, y1} in pixels."""
    boxes = values.get("boxes")
    if boxes is None:
        boxes = []
    if not isinstance(boxes, list):
        raise InputError(f"{BOXES_HELP}; got {type(boxes).__name__}.")
    fields = {k: v for k, v in values.items() if k != "boxes"}
    return LayoutRequest(**fields, boxes=boxes, box_units="pixels")


def score_rows(result) -> list[list[Any]]:
    def fmt(box):
        return "not found" if box is None else ", ".join(f"{c:.0f}" for c in box)

    return [
        [
            index,
            s.phrase,
            round(s.iou, 3),
            "" if s.detection_score is None else round(s.detection_score, 3),
            fmt(s.box),
            fmt(s.detected),
        ]
        for index, s in enumerate(result.scores, start=1)
    ]


def shown(result, call: Call) -> dict[str, Any]:
    return {
        "image": result.image,
        "overlay": result.overlay,
        "heatmaps": result.heatmaps,
        "scores": score_rows(result),
        "metrics": metrics_rows(result),
        "recipe": recipe_file(result, call.folder()),
    }


def layout_canvas() -> image_annotator:
    """The annotator to draw on; its example thumbnails show the boxes, not just the grid."""
    return boxes_in_example_thumbnails(
        image_annotator(
            value=canvas_for(*DEFAULT_SIZE),
            label=f"Layout: draw up to {MAX_BOXES} boxes, label each with a phrase",
            label_list=[],
            image_type="numpy",
            sources=[],
            show_clear_button=False,
            show_download_button=False,
            box_min_size=8,
            elem_id="layout-canvas",
        )
    )


def build_inputs() -> Form:
    form = Form(LayoutRequest)
    form("prompt", lines=2, max_lines=4, placeholder="e.g. a photo of a cat and a dog on a sofa")
    form.add(
        "phrases",
        gr.Textbox(
            label="Box labels",
            placeholder="e.g. a cat, a dog",
            info="Phrases of the prompt, comma-separated; offered as labels when you draw "
            "(left empty: the prompt's noun phrases).",
        ),
    )
    form.add("canvas", layout_canvas())
    with gr.Accordion("Advanced settings", open=False):
        form("negative_prompt")
        for row in ADVANCED_ROWS:
            with gr.Row():
                for name in row:
                    form(name)
    return form


ADVANCED_ROWS = (
    ("width", "height"),
    ("steps", "guidance_scale"),
    ("seed", "backbone"),
    ("strength", "guided_fraction"),
    ("iterations", "loss_threshold"),
    ("weight_inside", "weight_outside", "weight_boundary"),
    ("self_attention", "score"),
)


def build_outputs() -> dict[str, Any]:
    return {
        "image": gr.Image(label="Image", type="pil", format="png"),
        "overlay": gr.Image(label="Image with boxes", type="pil", format="png"),
        "heatmaps": gr.Gallery(label="Attention per phrase (end of guidance)", columns=4),
        "scores": gr.Dataframe(headers=SCORE_HEADERS, label="Layout score per box", wrap=True),
        "metrics": metrics_table("Metrics"),
        "recipe": gr.File(label=RECIPE_LABEL, interactive=False),
    }


def wire_canvas(form: Form) -> None:
    """Labels follow the prompt and the typed phrases; the canvas follows the output size and
    warns past MAX_BOXES boxes. UI-only events: none is on the API."""
    prompt, phrases, canvas = (form.inputs[n] for n in ("prompt", "phrases", "canvas"))
    private = {"api_visibility": "private", "show_progress": "hidden"}

    def set_labels(prompt_text: str, phrase_text: str, value: dict | None):
        return image_annotator(value=value, label_list=offered_labels(prompt_text, phrase_text))

    def warn_boxes(value: dict | None) -> None:
        if message := too_many_boxes(value):
            gr.Warning(message)

    for box in (prompt, phrases):
        box.blur(set_labels, [prompt, phrases, canvas], canvas, **private)
    width, height = form.inputs["width"], form.inputs["height"]
    for size in (width, height):
        for typed in (size.blur, size.submit):
            typed(resized_canvas, [canvas, width, height], canvas, **private)
    canvas.change(warn_boxes, canvas, None, trigger_mode="always_last", **private)


def plain_api(form: Form) -> dict[str, Any]:
    """The inputs of the /layout_to_image endpoint: the prompt, boxes as plain numbers (no
    canvas), and every setting."""
    boxes = gr.JSON(value=[], label=BOXES_HELP, visible=False)
    settings = {n: c for n, c in form.inputs.items() if n not in ("prompt", "phrases", "canvas")}
    return {"prompt": form.inputs["prompt"], "boxes": boxes, **settings}


def build(studio: StudioInterface) -> None:
    intro(INTRO)
    notice = gr.Markdown(visible=False)
    with gr.Row(render=False) as work:  # shown under the examples
        with gr.Column(scale=1):
            form = build_inputs()
            with gr.Row():
                run = gr.Button("Generate", variant="primary")
                cancel = gr.Button("Cancel", variant="stop")
        with gr.Column(scale=1):
            outputs = build_outputs()
    examples(
        example_rows(),
        [form.inputs["prompt"], form.inputs["phrases"], form.inputs["canvas"]],
        "Generate",
        cache_examples=False,
    )
    work.render()
    wire_canvas(form)
    cpu_notice(studio, notice, form, CPU_SLOW, "layout")
    engine = studio.engine  # created on first use, not at build

    def layout_generate(values: dict[str, Any], call: Call) -> dict[str, Any]:
        request = make_request(values, studio.on_accelerator("layout"))
        return shown(engine("layout").run(request, call.progress), call)

    def layout_to_image(values: dict[str, Any], call: Call) -> dict[str, Any]:
        """Layout to image: Stable Diffusion guided so each box's phrase fills its box."""
        return shown(engine("layout").run(api_request(values), call.progress), call)

    connect(
        run.click,
        layout_generate,
        form,
        outputs,
        api_name="layout_to_image",
        api_fn=layout_to_image,
        api_inputs=plain_api(form),
        ui_name="layout_generate",
        cancel=cancel,
        gpu_duration=offered("layout").gpu_seconds,
    )
