"""What a newcomer meets on the page: the System table and its engine list, the CPU notice and
CPU-sized settings, folded introductions, and CPU defaults that fit their fields."""

from __future__ import annotations

import re

import pytest

import app
from engines.base import Request
from engines.capabilities import CAPABILITIES
from engines.device import DeviceSpec
from tabs.system import status_rows


@pytest.fixture(scope="module")
def demo():
    return app.build_demo(device="cpu")


def test_status_reads_as_a_table():
    status = {
        "version": "0.1.0",
        "device": "cuda:0 (bfloat16)",
        "busy": "layout",
        "release_pending": ["all"],
        "loaded": {
            "layout": {"weights_mb": 2048.4, "components": ["parts"], "loaded_for_s": 125.0}
        },
        "gpu_allocated_mb": 2100.0,
        "gpu_free_mb": 70000.0,
        "gpu_total_mb": 81920.0,
    }
    rows = dict(status_rows(status))
    assert rows["device"] == "cuda:0 (bfloat16)" and rows["running now"] == "layout"
    assert rows["loaded: layout"] == "2,048 MB of weights (parts), for 2 min"
    assert rows["released when the run ends"] == "all"
    assert rows["GPU memory"] == "2,100 MB in use by the studio, 70,000 of 81,920 MB free"
    idle = dict(status_rows({"device": "cpu (float32)", "loaded": {}, "busy": None}))
    assert idle["running now"] == "nothing" and "no engine" in idle["loaded"]


def test_the_engine_to_release_is_picked_from_a_list(demo):
    (dropdown,) = [
        b for b in demo.blocks.values() if getattr(b, "label", "") == "Engine to release"
    ]
    assert [value for _, value in dropdown.choices] == ["all"] + [c.key for c in CAPABILITIES]


def load_handlers(demo):
    return [fn for fn in demo.fns.values() if (fn.name or "").startswith("on_load")]


def test_on_a_cpu_the_tabs_say_so_and_start_cpu_sized(demo):
    layout_notice = next(
        fn
        for fn in load_handlers(demo)
        if any(getattr(o, "label", "") == "Width (px)" for o in fn.outputs)
    )
    notice, *values = layout_notice.fn()
    assert notice["visible"] and "Running on a CPU" in notice["value"]
    assert "width 256, height 256, steps 20" in notice["value"]
    labels = [o.label for o in layout_notice.outputs[1:]]
    assert dict(zip(labels, [v["value"] for v in values], strict=True)) == {
        "Width (px)": 256,
        "Height (px)": 256,
        "Steps": 20,
    }


def test_on_a_gpu_the_notice_stays_hidden_and_the_sizes_are_the_gpu_ones(demo):
    demo.studio.manager._device = DeviceSpec("cuda:0", "bfloat16")
    try:
        for handler in load_handlers(demo):
            updates = handler.fn()
            notice, *values = updates if isinstance(updates, list) else [updates]
            assert notice == {"__type__": "update", "visible": False}
            labels = [o.label for o in handler.outputs[1:]]
            shown = dict(zip(labels, [v["value"] for v in values], strict=True))
            if "Width (px)" in shown and "Steps" in shown:
                assert (shown["Width (px)"], shown["Steps"]) in ((512, 50), (512, 25))
    finally:
        demo.studio.manager._device = DeviceSpec("cpu", "float32")


def test_device_sized_fields_fit_their_ranges_and_start_empty():
    from engines.fields import sized_fields

    checked = 0
    for request_type in _request_types():
        request = request_type()
        for name, spec in sized_fields(request_type):
            assert getattr(request, name) is None  # "not given" until the engine sizes it
            for accelerator in (True, False):
                value = spec.sized_default(accelerator)
                assert spec.check(value) == value
            assert spec.sized[1] <= spec.sized[0]
            checked += 1
    assert checked >= 12


def test_a_request_left_unsized_is_sized_for_its_device_and_records_the_values():
    from engines.layout.requests import LayoutRequest

    on_cpu = LayoutRequest(prompt="a cat")
    on_cpu.size_for(accelerator=False)
    assert (on_cpu.width, on_cpu.height, on_cpu.steps) == (256, 256, 20)
    on_gpu = LayoutRequest(prompt="a cat", steps=7)
    on_gpu.size_for(accelerator=True)
    assert (on_gpu.width, on_gpu.steps) == (512, 7)  # what the caller gave stays
    assert on_gpu.to_params()["width"] == 512


def _request_types() -> list[type[Request]]:
    from engines.studio import Studio

    studio = Studio(device="cpu")
    return [t for cap in CAPABILITIES for t in studio.engine(cap.key).request_types()]


def test_introductions_are_folded(demo):
    accordions = [b for b in demo.blocks.values() if type(b).__name__ == "Accordion"]
    folded = [a for a in accordions if a.label == "How it works"]
    assert len(folded) == len(CAPABILITIES) and not any(a.open for a in folded)


def test_metric_tables_show_every_row_and_outputs_offer_no_upload_zone(demo):
    from tabs.common import METRIC_HEADERS

    tables = [b for b in demo.blocks.values() if getattr(b, "headers", None) == METRIC_HEADERS]
    assert len(tables) >= 8 and all(t.max_height >= 2000 and t.wrap for t in tables)
    files = {b.elem_id: b for b in demo.blocks.values() if type(b).__name__ == "File"}
    assert files["compress-zsc"].interactive is False
    assert files["compress-recipe"].interactive is False


def test_gan_offers_example_texts(demo):
    from tabs.gan import EXAMPLE_TEXTS

    datasets = [b for b in demo.blocks.values() if type(b).__name__ == "Dataset"]
    assert any(d.samples == EXAMPLE_TEXTS for d in datasets)


@pytest.mark.e2e
def test_a_number_past_its_limit_is_refused_in_our_words(demo):
    """A typed 1e9 iterations is neither clamped in silence nor refused in Gradio's words: the
    box has no bounds of its own (its info shows the range), and the request refuses it with
    the message the CLI gives too."""
    from app_server import served
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    (iterations,) = [b for b in demo.blocks.values() if b.elem_id == "AdaptRequest-iterations"]
    assert type(iterations).__name__ == "Number"  # a slider's box clamps silently
    assert iterations.minimum is None and iterations.maximum is None
    assert iterations.info.endswith("; 1 to 5000")
    ours = "iterations is 1000000000; it must be 1 to 5000."
    with served(demo) as url, pytest.raises(AppError, match=re.escape(ours)):
        Client(url, verbose=False).predict(
            target="Pixar character", iterations=10**9, batch=None, api_name="/adapt_gan"
        )
