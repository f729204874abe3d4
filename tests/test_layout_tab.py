"""The Layout tab: wiring, the shipped examples, and an end-to-end call through gradio_client
against the launched app (tiny SD-1.5 and tiny Grounding DINO behind it)."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_layout import save_tiny_grounding_dino

from engines.layout.request import LayoutRequest, suggested_labels
from engines.layout.tokens import box_token_indices
from engines.registry import override_variable
from tabs import layout as tab
from tabs.canvas import blank_canvas, canvas_boxes, canvas_value, resized_canvas

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

    (event,) = [fn for fn in demo.fns.values() if fn.api_name == "layout_to_image"]
    assert len(event.inputs) == 19 and len(event.outputs) == 6
    assert isinstance(event.inputs[2], image_annotator)
    kinds = [type(block).__name__ for block in event.outputs]
    assert kinds == ["Image", "Image", "Gallery", "Dataframe", "Dataframe", "File"]
    assert event.concurrency_id == "gpu"
    names = {fn.api_name for fn in demo.fns.values()}
    assert {"layout_labels_prompt", "layout_canvas_width", "layout_canvas_height"} <= names
    accordions = [b for b in demo.blocks.values() if type(b).__name__ == "Accordion"]
    assert any(a.label == "Advanced settings" and not a.open for a in accordions)


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
    resized = resized_canvas(canvas, 256, 128)
    assert np.asarray(resized["image"]).shape == (128, 256, 3)
    assert resized["boxes"] == [{"label": "a cat", "xmin": 0, "ymin": 0, "xmax": 128, "ymax": 64}]
    assert suggested_labels("a cat and a dog", "") == ["cat", "dog"]
    assert suggested_labels("a cat and a dog", "a cat, dog, a cat") == ["a cat", "dog"]
    assert isinstance(tab.make_request(tab_values("p", None, True)), LayoutRequest)


@pytest.mark.e2e
def test_generate_through_gradio_client(demo):
    from app_server import served
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    prompt, phrases, canvas = tab.example_rows()[0]
    boxes = canvas["boxes"]
    with served(demo) as url:
        client = Client(url, verbose=False)
        value = {"image": handle_file(canvas["image"]), "boxes": boxes}
        image, overlay, heatmaps, scores, metrics, recipe = client.predict(
            prompt, phrases, value, *ADVANCED, True, api_name="/layout_to_image"
        )
        with pytest.raises(AppError, match="The prompt is empty"):
            client.predict("", phrases, value, *ADVANCED, True, api_name="/layout_to_image")
    from PIL import Image

    assert Image.open(image).size == (64, 64) and Image.open(overlay).size == (64, 64)
    assert [item["caption"] for item in heatmaps] == ["1: a cat", "2: a dog"]
    assert len(scores["data"]) == 2 and scores["headers"] == tab.SCORE_HEADERS
    rows = dict(metrics["data"])
    assert rows["guided_steps"] == 1 and 0 <= rows["mIoU"] <= 1
    assert recipe.endswith("layout-recipe.json")
