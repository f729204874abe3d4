"""LayoutRequest validation: every bad input is an InputError that names the problem."""

from __future__ import annotations

import re

import pytest

from engines.errors import InputError
from engines.layout.cli import parse_box
from engines.layout.requests import LayoutRequest, PhraseBox


def request(**overrides) -> LayoutRequest:
    params = {
        "prompt": "a cat and a dog on a sofa",
        "boxes": [("a cat", 16, 64, 240, 480), ("dog", 256, 64, 496, 480)],
        "width": 512,
        "height": 512,
    }
    params.update(overrides)
    sized = LayoutRequest(**params)
    sized.size_for(accelerator=True)  # what the engine does first: steps left out become 50
    return sized


def test_a_good_request_validates_and_converts_normalised_boxes():
    request().validate()
    normalised = request(boxes=[("a cat.", 0.1, 0.5, 0.45, 0.9)], box_units="normalized")
    normalised.validate()
    (box,) = normalised.pixel_boxes()
    assert box == PhraseBox("a cat", 51.2, 256.0, 230.4, 460.8)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"prompt": "   "}, "prompt is empty"),
        ({"boxes": [("a horse", 0, 0, 100, 100)]}, "'a horse' of box 1 is not in the prompt"),
        ({"boxes": [("cat", -4, 0, 100, 100)]}, "outside the 512x512 image"),
        ({"boxes": [("cat", 400, 400, 520, 500)]}, "outside the 512x512 image"),
        ({"boxes": [("cat", 10, 10, 17, 100)]}, "at least 8 px"),
        ({"boxes": [("cat", 100, 10, 50, 100)]}, "x0 >= x1"),
        ({"boxes": [("", 10, 10, 100, 100)]}, "has no phrase"),
        ({"boxes": [("cat", 8 * i, 0, 8 * i + 16, 16) for i in range(9)]}, "at most 8"),
        ({"steps": 0}, "steps is 0"),
        ({"steps": 151}, "steps is 151"),
        ({"steps": 2.5}, "steps must be a whole number"),
        ({"guidance_scale": 31.0}, "guidance scale (CFG) is 31;"),
        ({"guidance_scale": float("nan")}, "guidance scale (CFG) must be a finite number"),
        ({"width": 500}, "Width 500 is not a multiple of 8"),
        ({"height": 516}, "Height 516 is not a multiple of 8"),
        ({"width": 32}, "width is 32"),
        ({"guided_fraction": 1.5}, "guided fraction is 1.5; it must be 0 to 1"),
        ({"iterations": 0}, "iterations is 0"),
        ({"strength": -1.0}, "guidance strength is -1;"),
        ({"seed": -3}, "seed is -3"),
        ({"backbone": "sdxl"}, "Unknown backbone 'sdxl'"),
        ({"box_units": "inches"}, "Unknown box units 'inches'"),
        ({"weight_inside": 0, "weight_outside": 0, "weight_boundary": 0}, "All loss weights"),
    ],
)
def test_bad_input_is_an_input_error(overrides, message):
    with pytest.raises(InputError, match=re.escape(message)):
        request(**overrides).validate()


@pytest.mark.parametrize(
    "value", [("cat", 1, 2, 3), {"phrase": "cat", "x0": 1}, ("cat", "a", 0, 1, 1), 7]
)
def test_malformed_boxes_are_input_errors(value):
    with pytest.raises(InputError, match="A box is a phrase and four numbers"):
        request(boxes=[value])


def test_guided_steps_follow_the_fraction():
    assert request(steps=50, guided_fraction=0.2).guided_steps == 10
    assert request(steps=3, guided_fraction=0.2).guided_steps == 1
    assert not request(guided_fraction=0.0).guided
    assert not request(strength=0.0).guided
    assert not request(boxes=[]).guided


def test_requests_round_trip_through_recipe_params():
    original = request(box_units="pixels", seed=7)
    again = LayoutRequest.from_params(original.to_params())
    assert again == original


def test_sizes_left_out_are_checked_at_the_accelerator_size_until_the_device_is_known():
    """Before the engine sizes it, a request checks the rules between fields at the largest
    (accelerator) size and leaves the size unset; sized for a CPU, it is checked again."""
    unsized = LayoutRequest(prompt="a cat", boxes=[("a cat", 0, 0, 400, 400)])
    unsized.validate()  # fits 512 px; a CPU's 256 px image is not known yet
    assert unsized.width is None
    with pytest.raises(InputError, match="outside the 512x512 image"):
        LayoutRequest(prompt="a cat", boxes=[("a cat", 0, 0, 600, 400)]).validate()
    unsized.size_for(accelerator=False)
    with pytest.raises(InputError, match="outside the 256x256 image"):
        unsized.validate()
    with pytest.raises(InputError, match=re.escape("steps is 0; it must be 1 to 150.")):
        LayoutRequest(prompt="a cat", steps=0).validate()  # given values: checked at once


def test_cli_box_parsing():
    assert parse_box("a cat:0.1,0.5,0.45,0.9") == PhraseBox("a cat", 0.1, 0.5, 0.45, 0.9)
    assert parse_box("time: 12:0,0,1,1").phrase == "time: 12"
    for bad in ("a cat", "a cat:0.1,0.5,0.45", ":0,0,1,1", "cat:a,b,c,d"):
        with pytest.raises(InputError, match="--box"):
            parse_box(bad)
