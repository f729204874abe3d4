"""The Layout tab: wiring, the shipped examples, and an end-to-end call through gradio_client
against the launched app (tiny SD-1.5 and tiny Grounding DINO behind it)."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_layout import save_tiny_grounding_dino

from engines.errors import InputError
from engines.layout.requests import LayoutRequest, suggested_labels
from engines.phrases import box_token_indices
from engines.registry import override_variable
from tabs import layout as tab
from tabs.canvas import blank_canvas, canvas_boxes, canvas_value, resized_canvas, too_many_boxes

ADVANCED = ["", 64, 64, 2, 7.5, 0, "sd15", 30.0, 0.5, 1, 0.2, 1.0, 1.0, 0.5, True]
ADVANCED_NAMES = [
    "negative_prompt",
    "width",
    "height",
    "steps",
    "guidance_scale",
    "seed",
    "backbone",
    "strength",
    "guided_fraction",
    "iterations",
    "loss_threshold",
    "weight_inside",
    "weight_outside",
    "weight_boundary",
    "self_attention",
]


def tab_values(prompt, canvas, score: bool) -> dict:
    """The tab's values by name, as the handler gets them."""
    values = dict(zip(ADVANCED_NAMES, ADVANCED, strict=True))
    return {"prompt": prompt, "phrases": "", "canvas": canvas, **values, "score": score}


@pytest.fixture(scope="module")
def demo(tiny_sd15_dir, tmp_path_factory):
    from app import build_demo

    detector = save_tiny_grounding_dino(tmp_path_factory.mktemp("tiny-grounding-dino"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(override_variable("layout", "sd15"), str(tiny_sd15_dir))
        patch.setenv(override_variable("layout", "detector"), str(detector))
        yield build_demo(tabs=["layout"], device="cpu")


def test_the_tab_wires_canvas_settings_and_outputs(demo):
    from gradio_image_annotation import image_annotator

    events = {fn.api_name: fn for fn in demo.fns.values()}
    page, api = events["layout_generate"], events["layout_to_image"]
    assert len(page.inputs) == 19 and len(page.outputs) == 6
    assert isinstance(page.inputs[2], image_annotator)
    assert page.api_visibility == "private"  # the page's event; API clients use plain boxes
    assert [type(block).__name__ for block in api.inputs[:2]] == ["Textbox", "JSON"]
    assert api.inputs[2:] == page.inputs[3:]
    names = ["image", "overlay", "heatmaps", "scores", "metrics", "recipe"]
    assert [o.label for o in api.outputs] == names  # short names, hidden twins of the page's
    kinds = [type(block).__name__ for block in page.outputs]
    assert kinds == ["Image", "Image", "Gallery", "Dataframe", "Dataframe", "File"]
    assert page.concurrency_id == api.concurrency_id == "gpu"
    ui_only = [fn for fn in demo.fns.values() if fn.api_visibility == "private"]
    assert {"set_labels", "resized_canvas", "warn_boxes"} <= {fn.name for fn in ui_only}
    accordions = [b for b in demo.blocks.values() if type(b).__name__ == "Accordion"]
    assert any(a.label == "Advanced settings" and not a.open for a in accordions)


def test_example_thumbnails_show_their_boxes(demo):
    (examples,) = [b for b in demo.blocks.values() if type(b).__name__ == "Dataset"]
    from PIL import Image

    for sample, example in zip(examples.samples, tab.EXAMPLES, strict=True):
        thumbnail = np.asarray(Image.open(sample[2]["path"]).convert("RGB"))
        blank = np.asarray(Image.open(tab.ASSETS / "canvas-512x512.png").convert("RGB"))
        x0, y0, x1, y1 = example["boxes"][0][1:]
        assert not np.array_equal(thumbnail[y0, x0:x1], blank[y0, x0:x1])  # an outline


def test_at_least_three_examples_are_valid_requests(tiny_sd15_dir):
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(tiny_sd15_dir / "tokenizer")
    rows = tab.example_rows()
    assert len(rows) >= 3
    for prompt, phrases, canvas in rows:
        request = tab.make_request(tab_values(prompt, canvas, False))
        request.validate()
        assert [b.phrase for b in request.boxes] == [b["label"] for b in canvas["boxes"]]
        assert set(phrases.split(", ")) == {b.phrase for b in request.boxes}
        # the token-level check the engine makes before generating
        assert len(box_token_indices(tokenizer, prompt, [b.phrase for b in request.boxes])) == len(
            request.boxes
        )


def test_canvas_helpers_scale_boxes_and_offer_labels():
    canvas = canvas_value(blank_canvas(512, 256), [("a cat", 0, 0, 256, 128)])
    (box,) = canvas_boxes(canvas, 1024, 512)
    assert (box.phrase, box.coords()) == ("a cat", (0, 0, 512, 256))
    resized = resized_canvas(canvas, 1024, 512)
    assert np.asarray(resized["image"]).shape == (512, 1024, 3)
    assert resized["boxes"] == [{"label": "a cat", "xmin": 0, "ymin": 0, "xmax": 512, "ymax": 256}]
    assert suggested_labels("a cat and a dog", "") == ["cat", "dog"]
    assert suggested_labels("a cat and a dog", "a cat, dog, a cat") == ["a cat", "dog"]
    assert isinstance(tab.make_request(tab_values("p", None, True)), LayoutRequest)


def test_a_new_box_has_no_phrase_until_one_is_picked(demo):
    """The annotator preselects its first label for a new box, so the first is "choose a
    phrase…"; Generate refuses a box still wearing it (or none), naming the box."""
    set_labels = next(fn for fn in demo.fns.values() if fn.name == "set_labels")
    offered = set_labels.fn("a cat and a dog", "", None).label_list
    assert [label for label, _ in offered] == [tab.NO_PHRASE, "cat", "dog"]
    assert set_labels.fn("", "", None).label_list is None  # no prompt yet: the user types one
    prompt = "a cat and a dog"
    for unpicked in (tab.NO_PHRASE, ""):
        canvas = canvas_value(
            blank_canvas(64, 64), [("cat", 0, 0, 30, 30), (unpicked, 30, 30, 60, 60)]
        )
        with pytest.raises(
            InputError, match="^Box 2 has no phrase; double-click it and pick one of: cat, dog.$"
        ):
            tab.make_request(tab_values(prompt, canvas, False))
    picked = canvas_value(blank_canvas(64, 64), [("cat", 0, 0, 30, 30), ("dog", 30, 30, 60, 60)])
    assert [b.phrase for b in tab.make_request(tab_values(prompt, picked, False)).boxes] == [
        "cat",
        "dog",
    ]


def test_a_small_output_gets_a_canvas_large_enough_to_draw_on():
    """At 128 px the canvas is drawn at 512 (labels legible); boxes come back in output px."""
    small = resized_canvas(
        canvas_value(blank_canvas(512, 512), [("a cat", 0, 0, 256, 256)]), 128, 64
    )
    assert np.asarray(small["image"]).shape == (256, 512, 3)
    assert small["boxes"][0] == {"label": "a cat", "xmin": 0, "ymin": 0, "xmax": 256, "ymax": 128}
    (box,) = canvas_boxes(small, 128, 64)
    assert box.coords() == (0, 0, 64, 32)


def test_labels_offered_are_the_prompts_noun_phrases():
    assert suggested_labels("a red car and a blue bus on a road") == ["red car", "blue bus", "road"]
    assert suggested_labels("a photo of a dog sitting on a sofa, a lamp") == [
        "photo",
        "dog",
        "sofa",
        "lamp",
    ]
    for prompt, _, canvas in tab.example_rows():  # every shipped box label is offered
        offered = suggested_labels(prompt)
        for box in canvas["boxes"]:
            assert any(box["label"].removeprefix("a ") in label for label in offered)


def test_more_than_eight_boxes_is_warned_about():
    boxes = [("cat", i, 0, i + 10, 10) for i in range(0, 90, 10)]
    assert too_many_boxes(canvas_value(blank_canvas(512, 512), boxes[:8])) == ""
    assert too_many_boxes(canvas_value(blank_canvas(512, 512), boxes)) == (
        "9 boxes drawn; at most 8 are used. Remove 1."
    )


def test_steps_are_counted_as_the_user_asked(tiny_sd15_dir, monkeypatch):
    """PNDM runs 51 timesteps for 50 steps: progress still counts to 50."""
    from engines.studio import Studio

    monkeypatch.setenv(override_variable("layout", "sd15"), str(tiny_sd15_dir))
    seen = []
    request = LayoutRequest(prompt="a cat", width=64, height=64, steps=5)
    Studio(device="cpu").engine("layout").run(request, lambda f, what: seen.append(what))
    steps = [what for what in seen if what.startswith("step")]
    assert steps[-1] == "step 5/5" and all("/5" in what for what in steps)


@pytest.mark.e2e
def test_generate_through_gradio_client(demo):
    from app_server import served
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    prompt = "a photo of a cat and a dog sitting on a sofa"
    boxes = [  # plain numbers in pixels of the 64x64 output: no canvas, no image
        {"phrase": "a cat", "x0": 4, "y0": 20, "x1": 30, "y1": 60},
        {"phrase": "a dog", "x0": 34, "y0": 16, "x1": 62, "y1": 60},
    ]
    with served(demo) as url:
        client = Client(url, verbose=False)
        image, overlay, heatmaps, scores, metrics, recipe = client.predict(
            prompt, boxes, *ADVANCED, True, api_name="/layout_to_image"
        )
        with pytest.raises(AppError, match="The prompt is empty"):
            client.predict("", boxes, *ADVANCED, True, api_name="/layout_to_image")
        with pytest.raises(AppError, match="a list of"):
            client.predict(
                prompt, {"phrase": "a cat"}, *ADVANCED, True, api_name="/layout_to_image"
            )
    from PIL import Image

    assert Image.open(image).size == (64, 64) and Image.open(overlay).size == (64, 64)
    assert [item["caption"] for item in heatmaps] == ["1: a cat", "2: a dog"]
    assert len(scores["data"]) == 2 and scores["headers"] == tab.SCORE_HEADERS
    assert metrics["guided_steps"] == 1 and 0 <= metrics["mIoU"] <= 1  # the raw metrics
    assert recipe.endswith("layout-recipe.json")
