"""The Subject video tab: a subject photo, its box at a few frames drawn on a canvas, a prompt."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import gradio as gr
from gradio_image_annotation import image_annotator

from engines.capabilities import offered
from engines.errors import InputError
from engines.interface import StudioInterface
from engines.video import Keyframe, SubjectVideoRequest

from .canvas import blank_canvas, boxes_in_example_thumbnails, canvas_boxes, canvas_value
from .common import RECIPE_LABEL, cpu_notice, intro, metrics_rows, metrics_table, recipe_file
from .examples import examples
from .forms import Call, Form, connect
from .uploads import image_input

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "video"
SUBJECT = str(ASSETS / "toy-robot.png")
INTRO = """\
**Zero-shot approximation of DreamVideo-2** on AnimateDiff (SD 1.5 + motion adapter v1-5-2) and
IP-Adapter. Upload a photo of a subject (an RGBA cut-out, or a photo and its mask), draw its box
at the first and last frame (and any frame between: label a box `start`, `end` or a frame
number), name the subject with words of the prompt, and generate. **DreamVideo-2's:** reference
attention to the subject with a blended box mask (lambda_M), box-driven motion. **Ours:** no
trained motion module or reweighted loss; attention controls replace them (reference attention
with a hard box mask early, masked IP-Adapter, the subject's and end-of-text tokens boosted in
the box); **the peers' controls** (Peekaboo, TrailBlazer, Direct-a-Video) are presets of the
same processors, under "box control". Without a subject
it is box-guided text-to-video; without boxes, subject-driven text-to-video.
"""
CPU_SLOW = (
    "an 8-frame, 256 px video with 6 steps takes about three minutes (a guess from the layout "
    "tab's per-step time: 8 frames cost about 8 images a step; not measured with real "
    "weights); 16 frames at 512 px with 25 steps, over an hour."
)
KEYFRAMES_HELP = (
    "Keyframes: a list of {frame, x0, y0, x1, y1}, the subject's box at that frame as "
    "fractions of the frame (top left then bottom right); frames between are interpolated"
)
ADVANCED_ROWS = (
    ("control",),
    ("negative_prompt",),
    ("frames", "fps"),
    ("width", "height"),
    ("steps", "guidance_scale", "seed"),
    ("ip_adapter", "ip_scale"),
    ("reference_strength", "reference_lambda_early", "reference_soften", "reference_lambda"),
    ("reference_start", "reference_end"),
    ("ip_mask_strength", "ip_mask_start", "ip_mask_end"),
    ("token_strength", "token_trailing", "token_start", "token_end"),
    ("temporal_mask_end",),
    ("soft_edge", "remove_background"),
    ("metrics", "cpu_offload", "low_memory"),
)
EXAMPLES: list[dict[str, Any]] = [
    {
        "prompt": "a toy robot walking across a wooden table, soft daylight",
        "phrase": "toy robot",
        "boxes": [("start", 0.04, 0.35, 0.38, 0.9), ("end", 0.6, 0.35, 0.95, 0.9)],
    },
    {
        "prompt": "a toy robot flying over a city at sunset",
        "phrase": "toy robot",
        "boxes": [
            ("start", 0.05, 0.6, 0.35, 0.95),
            ("middle", 0.35, 0.25, 0.65, 0.6),
            ("end", 0.62, 0.05, 0.95, 0.4),
        ],
    },
]


def frame_of(label: str, frames: int) -> int:
    """A box label as a frame: start, middle, end, or a number ("7", "frame 7")."""
    text = (label or "").strip().lower()
    named = {"start": 0, "first": 0, "middle": frames // 2, "end": frames - 1, "last": frames - 1}
    if text in named:
        return named[text]
    match = re.fullmatch(r"(?:frame\s*)?(\d+)", text)
    if not match:
        raise InputError(
            f"Label each box start, end, middle or a frame number (0 to {frames - 1}); "
            f"got {label!r}."
        )
    return int(match.group(1))


def canvas_keyframes(canvas: dict | None, frames: int) -> list[Keyframe]:
    """The canvas boxes as keyframes, in fractions of the frame."""
    return [
        Keyframe(frame_of(box.phrase, frames), box.x0, box.y0, box.x1, box.y1)
        for box in canvas_boxes(canvas, 1, 1)
    ]


def make_request(values: dict[str, Any], accelerator: bool | None = None) -> SubjectVideoRequest:
    """The request from the tab's values (an empty size box: the device's value, on an
    `accelerator` or not), the canvas boxes read as keyframes."""
    fields = {k: v for k, v in values.items() if k != "canvas"}
    request = SubjectVideoRequest(**fields)
    if accelerator is not None:
        request.size_for(accelerator)
    request.validate()  # frames checked before the labels are read against them
    request.keyframes = canvas_keyframes(values.get("canvas"), request.frames)
    request.validate()
    return request


def api_request(values: dict[str, Any]) -> SubjectVideoRequest:
    """The request from the API's plain values: keyframes as {frame, x0, y0, x1, y1}."""
    keyframes = values.get("keyframes")
    if keyframes is None:
        keyframes = []
    if not isinstance(keyframes, list):
        raise InputError(f"{KEYFRAMES_HELP}; got {type(keyframes).__name__}.")
    return SubjectVideoRequest(**{**values, "keyframes": keyframes})


def plain_api(form: Form) -> dict[str, Any]:
    """The /subject_video endpoint's inputs: keyframe boxes as plain numbers (no canvas)."""
    keyframes = gr.JSON(value=[], label=KEYFRAMES_HELP, visible=False)
    inputs = {n: c for n, c in form.inputs.items() if n != "canvas"}
    head = ("prompt", "subject_phrase", "subject", "subject_mask")
    return {
        **{n: inputs[n] for n in head},
        "keyframes": keyframes,
        **{n: c for n, c in inputs.items() if n not in head},
    }


def example_rows() -> list[list[Any]]:
    canvas = blank_canvas(512, 512)
    rows = []
    for example in EXAMPLES:
        boxes = [(label, *(round(c * 512) for c in box)) for label, *box in example["boxes"]]
        rows.append([example["prompt"], example["phrase"], SUBJECT, canvas_value(canvas, boxes)])
    return rows


def build_inputs() -> Form:
    form = Form(SubjectVideoRequest)
    form("prompt", lines=2, max_lines=4, placeholder="e.g. a toy robot walking across a table")
    form("subject_phrase", placeholder="e.g. toy robot")
    with gr.Row():
        form.add(
            "subject",
            image_input(
                label="Subject (RGBA cut-out or photo)",
                type="filepath",
                image_mode="RGBA",
                sources=["upload", "clipboard"],
            ),
        )
        form.add(
            "subject_mask",
            image_input(
                label="Subject mask (optional, white = subject)",
                type="filepath",
                image_mode="L",
                sources=["upload"],
            ),
        )
    form.add(
        "canvas",
        boxes_in_example_thumbnails(
            image_annotator(
                value=canvas_value(blank_canvas(512, 512), []),
                label="Trajectory: draw the subject's box, label it start, end or a frame number",
                label_list=["start", "end", "middle", "4", "12"],
                image_type="numpy",
                sources=[],
                show_clear_button=False,
                show_download_button=False,
                box_min_size=8,
            )
        ),
    )
    with gr.Accordion("Advanced settings", open=False):
        for row in ADVANCED_ROWS:
            with gr.Row():
                for name in row:
                    form(name)
    return form


def build_outputs() -> dict[str, Any]:
    return {
        "video": gr.Video(label="Video", format="mp4", autoplay=True, loop=True),
        "boxes_video": gr.Video(label="Video with the boxes", format="mp4", loop=True),
        "strip": gr.Image(label="Frames", type="filepath", format="png"),
        "metrics": metrics_table("Metrics"),
        "recipe": gr.File(label=RECIPE_LABEL, interactive=False),
    }


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
    names = ("prompt", "subject_phrase", "subject", "canvas")
    examples(example_rows(), [form.inputs[n] for n in names], "Generate", cache_examples=False)
    work.render()

    def shown(request: SubjectVideoRequest, call: Call) -> dict[str, Any]:
        result = studio.engine("video").run(request, call.progress)
        folder = call.folder()
        written = {path.name: str(path) for path in result.save(folder)}
        return {
            "video": written["video.mp4"],
            "boxes_video": written.get("video-boxes.mp4"),
            "strip": written["frames.png"],
            "metrics": metrics_rows(result),
            "recipe": recipe_file(result, folder),
        }

    def video_generate(values: dict[str, Any], call: Call) -> dict[str, Any]:
        return shown(make_request(values, studio.on_accelerator("video")), call)

    def subject_video(values: dict[str, Any], call: Call) -> dict[str, Any]:
        """A short video of the subject moving along the box keyframes, with the metrics
        measured on it (cancelling the job stops it at the next denoising step)."""
        return shown(api_request(values), call)

    connect(
        run.click,
        video_generate,
        form,
        outputs,
        api_name="subject_video",
        api_fn=subject_video,
        api_inputs=plain_api(form),
        ui_name="video_generate",
        cancel=cancel,
        gpu_duration=offered("video").gpu_seconds,
    )
    cpu_notice(studio, notice, form, CPU_SLOW, "video")
