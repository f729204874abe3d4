"""The API page as a client reads it: UI-only events are hidden, and every public endpoint says
what it does and has plainly named, labelled parameters."""

from __future__ import annotations

import re

import pytest
from app_server import served
from gradio_client import Client

import app

pytestmark = pytest.mark.e2e

PUBLIC = {
    "layout": {"/layout_to_image"},
    "speech": {"/tts", "/voice_convert"},
    "gan": {"/adapt_gan", "/stop_gan", "/sample_gan"},
    "nerf": {"/nerf_reconstruct", "/nerf_edit", "/nerf_render", "/nerf_stop"},
    "compression": {"/compress", "/restore_tokens", "/decompress"},
    "video": {"/subject_video"},
    "system": {"/system_status", "/release_engine"},
}
"""What API clients call, per capability. A capability not listed here (a tab added since)
only has to pass the documentation checks."""
UI_ONLY = re.compile(
    r"/(.*_labels_.*|.*_canvas_.*|.*_use_.*|cancel_.*|on_load.*|lambda.*|.*_generate)"
)
PLAIN_NAME = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
GENERIC_LABEL = re.compile(r"(\d+(st|nd|rd|th)|parameter_\d+|value_\d+|)")


@pytest.fixture(scope="module")
def api() -> dict:
    demo = app.build_demo(device="cpu")
    with served(demo) as url:
        yield Client(url, verbose=False).view_api(return_format="dict", print_info=False)


def test_only_the_endpoints_a_client_calls_are_listed(api):
    from engines.capabilities import CAPABILITIES

    listed = set(api["named_endpoints"])
    keys = [cap.key for cap in CAPABILITIES] + ["system"]
    expected = set().union(*(PUBLIC[key] for key in keys if key in PUBLIC))
    assert expected <= listed
    if all(key in PUBLIC for key in keys):
        assert listed == expected
    assert not [name for name in listed if UI_ONLY.fullmatch(name)]
    assert api["unnamed_endpoints"] == {}


def test_every_public_endpoint_is_described_with_plain_labelled_parameters(api):
    for name, endpoint in api["named_endpoints"].items():
        assert endpoint.get("description", "").strip(), f"{name} says nothing about itself"
        for parameter in endpoint["parameters"]:
            where = f"{name}({parameter['parameter_name']})"
            assert PLAIN_NAME.fullmatch(parameter["parameter_name"]), where
            assert not GENERIC_LABEL.fullmatch(parameter["label"] or ""), where
        for value in endpoint["returns"]:
            assert not GENERIC_LABEL.fullmatch(value["label"] or ""), f"{name} returns"


def test_layout_to_image_takes_a_prompt_and_plain_boxes(api):
    parameters = api["named_endpoints"]["/layout_to_image"]["parameters"]
    names = [p["parameter_name"] for p in parameters]
    assert names[:2] == ["prompt", "boxes"] and "canvas" not in names
    boxes = parameters[1]
    assert "{phrase, x0, y0, x1, y1}" in boxes["label"]
    assert boxes["parameter_has_default"] and boxes["parameter_default"] == []
