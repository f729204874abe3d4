"""The Subject video tab: wiring, the shipped examples and subject, canvas labels, and an
end-to-end call through gradio_client against the launched app (tiny models behind it)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from engines.errors import InputError
from engines.registry import override_variable
from engines.video import SubjectVideoRequest
from tabs import video as tab
from tabs.canvas import blank_canvas, canvas_value

ADVANCED = {
    "control": "ours",
    "negative_prompt": "",
    "frames": 8,
    "fps": 8,
    "width": 256,
    "height": 256,
    "steps": 1,
    "guidance_scale": 7.5,
    "seed": 0,
    "ip_adapter": "plain",
    "ip_scale": 0.6,
    "reference_strength": 1.0,
    "reference_lambda_early": 0.0,
    "reference_soften": 0.5,
    "reference_lambda": 0.25,
    "reference_start": 0.0,
    "reference_end": 1.0,
    "ip_mask_strength": 1.0,
    "ip_mask_start": 0.0,
    "ip_mask_end": 1.0,
    "token_strength": 4.0,
    "token_trailing": 15,
    "token_start": 0.0,
    "token_end": 0.2,
    "temporal_mask_end": 0.0,
    "soft_edge": 0.0,
    "remove_background": False,
    "metrics": False,
    "cpu_offload": False,
    "low_memory": False,
}
NAMES = ["prompt", "subject_phrase", "subject", "subject_mask", "canvas", *ADVANCED]


@pytest.fixture(scope="module")
def demo(tiny_video_dirs):
    from app import build_demo

    with pytest.MonkeyPatch.context() as patch:
        for component, folder in tiny_video_dirs.items():
            patch.setenv(override_variable("video", component), str(folder))
        yield build_demo(tabs=["video"], device="cpu")


def test_the_tab_wires_inputs_outputs_and_cancel(demo):
    from gradio_image_annotation import image_annotator

    (event,) = [fn for fn in demo.fns.values() if fn.api_name == "video_generate"]
    (api,) = [fn for fn in demo.fns.values() if fn.api_name == "subject_video"]
    assert event.api_visibility == "private" and api.api_visibility == "public"
    assert len(event.inputs) == len(NAMES) and len(event.outputs) == 5
    assert type(api.inputs[NAMES.index("canvas")]).__name__ == "JSON"  # plain keyframes
    assert [o.label for o in api.outputs] == ["video", "boxes_video", "strip", "metrics", "recipe"]
    assert isinstance(event.inputs[NAMES.index("canvas")], image_annotator)
    kinds = [type(block).__name__ for block in event.outputs]
    assert kinds == ["Video", "Video", "Image", "Dataframe", "File"]
    assert event.concurrency_id == "gpu"
    # the Cancel button cancels this event (Gradio ends it; the run stops at its next step)
    assert any(event._id in fn.cancels for fn in demo.fns.values())
    accordions = [b for b in demo.blocks.values() if type(b).__name__ == "Accordion"]
    assert any(a.label == "Advanced settings" and not a.open for a in accordions)


def test_examples_are_valid_requests_with_our_own_subject():
    from assets.video.make_assets import toy_robot

    shipped = Image.open(tab.SUBJECT)
    assert shipped.mode == "RGBA"
    assert np.array_equal(np.asarray(shipped), np.asarray(toy_robot()))  # drawn by our code
    rows = tab.example_rows()
    assert len(rows) >= 2
    for prompt, phrase, subject, canvas in rows:
        values = {"prompt": prompt, "subject_phrase": phrase, "subject": subject}
        request = tab.make_request({**values, "subject_mask": None, "canvas": canvas, **ADVANCED})
        assert len(request.keyframes) == len(canvas["boxes"]) >= 2
        assert request.keyframes[0].frame == 0 and request.keyframes[-1].frame == 7


def test_canvas_labels_become_frames():
    canvas = canvas_value(
        blank_canvas(512, 256), [("end", 256, 0, 512, 128), ("frame 3", 0, 0, 128, 256)]
    )
    end, third = tab.canvas_keyframes(canvas, 16)
    assert (end.frame, end.box()) == (15, (0.5, 0.0, 1.0, 0.5))
    assert (third.frame, third.box()) == (3, (0.0, 0.0, 0.25, 1.0))
    assert tab.frame_of("middle", 16) == 8 and tab.frame_of("start", 16) == 0
    with pytest.raises(InputError, match="Label each box start, end"):
        tab.frame_of("dog", 16)
    values = {"prompt": "a dog", "subject_phrase": "dog", "subject": None, "subject_mask": None}
    late = canvas_value(blank_canvas(64, 64), [("20", 0, 0, 32, 32)])
    with pytest.raises(InputError, match="outside the video's frames 0 to 7"):
        tab.make_request({**values, "canvas": late, **ADVANCED})
    assert isinstance(tab.make_request({**values, "canvas": None, **ADVANCED}), SubjectVideoRequest)


@pytest.mark.e2e
def test_subject_video_through_gradio_client(demo):
    from app_server import served
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    from engines.mp4 import read_mp4

    prompt, phrase, subject, _ = tab.example_rows()[0]
    last = ADVANCED["frames"] - 1
    keys = ("frame", "x0", "y0", "x1", "y1")
    (_, *first), (_, *final) = tab.EXAMPLES[0]["boxes"]
    value = [  # plain keyframes, fractions of the frame, as layout takes plain boxes
        dict(zip(keys, (0, *first), strict=True)),
        dict(zip(keys, (last, *final), strict=True)),
    ]
    with served(demo) as url:
        client = Client(url, verbose=False)
        video, boxes_video, strip, metrics, recipe = client.predict(
            prompt,
            phrase,
            handle_file(subject),
            None,
            value,
            *ADVANCED.values(),
            api_name="/subject_video",
        )
        with pytest.raises(AppError, match="The prompt is empty"):
            client.predict(
                "", phrase, None, None, value, *ADVANCED.values(), api_name="/subject_video"
            )
        # a cancelled job stops the engine at its next step: the run registry empties
        from tabs.running_calls import RUNS

        slow = {**ADVANCED, "steps": 40}
        job = client.submit(
            prompt, phrase, None, None, value, *slow.values(), api_name="/subject_video"
        )
        deadline = time.monotonic() + 60
        while not (job.status().progress_data or time.monotonic() > deadline):
            time.sleep(0.05)  # running: it has reported progress
        job.cancel()
        deadline = time.monotonic() + 180  # the next step, on a loaded 2-core machine
        while RUNS.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert RUNS.running() == []
    frames, meta = read_mp4(video["video"] if isinstance(video, dict) else video)
    assert frames.shape == (8, 256, 256, 3) and meta["codec"] == "h264"
    assert (
        read_mp4(boxes_video["video"] if isinstance(boxes_video, dict) else boxes_video)[0].shape
        == frames.shape
    )
    assert Image.open(strip).height == 128
    assert (  # the API returns the raw metrics, as metrics.json has them
        metrics["controls"] == "reference, ip_mask, token, token_outside"
        and metrics["generation_s"] > 0
    )
    assert recipe.endswith(("video-recipe.json", "video-recipe.zip"))  # zip: with its inputs


def test_example_thumbnails_show_the_trajectory_boxes(demo):
    (examples,) = [b for b in demo.blocks.values() if type(b).__name__ == "Dataset"]
    blank = blank_canvas(512, 512)
    for sample, example in zip(examples.samples, tab.EXAMPLES, strict=True):
        thumbnail = np.asarray(Image.open(sample[-1]["path"]).convert("RGB"))
        x0, y0, x1, _ = (round(c * 512) for c in example["boxes"][0][1:])
        assert not np.array_equal(thumbnail[y0, x0:x1], blank[y0, x0:x1])  # an outline
