"""Headless Chromium through a newcomer's first minutes, second pass: an unreadable upload after
an Example click and an Example whose cached file vanished still get our words, Cancel is one
neutral message, the busy line and the System panel follow a run live, and every tab says
where to start."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import test_browser_flows
from app_server import served
from test_browser_flows import Outcomes, set_number, visible
from tiny_compression import compression_studio, tiny_amused_in

import app
from engines.capabilities import CAPABILITIES
from engines.registry import override_variable
from tabs.examples import START_HERE, file_paths

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="module")
def studio(tiny_sd15_dir, tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(override_variable("layout", "sd15"), str(tiny_sd15_dir))
        patch.setenv(override_variable("layout", "detector"), str(base / "no-detector"))
        studio, undo = compression_studio(tiny_amused_in(base), base / "zss-cache")
        yield studio
        undo()


browser = test_browser_flows.browser  # the one Chromium launcher, as a fixture here too


@pytest.fixture(scope="module")
def demo(studio):
    return app.build_demo(studio=studio)


@pytest.fixture(scope="module")
def site(demo):
    with served(demo, css=app.CSS) as url:
        yield url


@pytest.fixture
def page(browser, site, request):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(site, wait_until="load")
    page.get_by_text("Running on a CPU").first.wait_for(timeout=30_000)
    yield page
    if getattr(request.node, "failed_call", False):
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"failed-{request.node.name}.png"), full_page=True)
    context.close()


def open_tab(page, key: str) -> None:
    page.locator(f'button[role="tab"][data-tab-id="{key}"]').click()


def toasts(page) -> list[str]:
    return [t.inner_text() for t in page.locator('[data-testid="toast-body"]').all()]


def test_an_unreadable_upload_after_an_example_click_gets_our_message(page, tmp_path):
    """Clicking an Example gives the session its own copy of the photo widget; a text file
    named .png uploaded after it is still answered in our words, not a bare "Error"."""
    open_tab(page, "compression")
    page.locator("tr.tr-body").locator("visible=true").first.click()  # the first example
    page.locator("#compress-photo img").first.wait_for(timeout=10_000)
    bad = tmp_path / "holiday.png"
    bad.write_text("this is a text file, not a picture")
    page.locator("#compress-photo input[type=file]").set_input_files(str(bad))
    page.wait_for_timeout(500)
    visible(page, "button", "Compress").click()
    page.get_by_text("holiday.png cannot be read as an image").first.wait_for(timeout=20_000)
    assert not page.get_by_text("/tmp/").count()


def test_an_example_whose_cached_file_vanished_is_made_again(page, demo):
    """Gradio ages out (or another process empties) the copies it made of the examples' files;
    clicking such an example writes them again instead of failing."""
    canvas = next(
        block for block in demo.blocks.values() if getattr(block, "elem_id", "") == "layout-canvas"
    )
    layout_examples = [
        shown
        for shown in _examples_of(demo)
        if canvas in shown.inputs_with_examples  # the Layout tab's
    ]
    (shown,) = layout_examples
    gone = [
        Path(p) for value in shown.non_none_processed_examples.as_list() for p in file_paths(value)
    ]
    assert gone
    for path in gone:
        path.unlink(missing_ok=True)
    open_tab(page, "layout")
    page.locator("#layout-canvas").wait_for()
    page.get_by_text("a red apple and a green pear").first.click()
    prompt = page.locator("#LayoutRequest-prompt textarea")
    deadline = time.monotonic() + 10
    while "red apple" not in prompt.input_value():
        assert time.monotonic() < deadline, "the example did not load"
        page.wait_for_timeout(100)
    page.wait_for_timeout(1000)
    assert not [t for t in toasts(page) if "Error" in t or "error" in t]
    assert all(
        Path(p).is_file()
        for v in shown.non_none_processed_examples.as_list()
        for p in file_paths(v)
    )
    page.locator("#layout-canvas canvas").first.wait_for(timeout=10_000)


def _examples_of(demo):
    return [block.zss_examples for block in demo.blocks.values() if hasattr(block, "zss_examples")]


def test_cancel_is_one_neutral_message_and_the_status_follows_the_run(page, studio, monkeypatch):
    engine = studio.engine("layout")
    outcomes = Outcomes(engine)
    monkeypatch.setattr(engine, "run", outcomes)
    open_tab(page, "layout")
    page.get_by_text("System", exact=True).first.click()
    page.locator("#LayoutRequest-prompt textarea").fill("a cat on a sofa")
    page.get_by_text("Advanced settings").click()
    set_number(page, "LayoutRequest-steps", 150)
    visible(page, "button", "Generate").click()

    busy = page.locator("#zss-busy")
    busy.get_by_text(re.compile(r"busy: layout")).wait_for(timeout=60_000)
    table = page.locator("#system-status")  # no Refresh pressed
    deadline = time.monotonic() + 5
    while not re.search(r"running now\s+layout", table.inner_text()):
        assert time.monotonic() < deadline, "the System panel did not follow the run"
        page.wait_for_timeout(100)
    open_tab(page, "compression")  # the line is on every tab
    assert busy.is_visible() and "busy: layout" in busy.inner_text()
    page.screenshot(path=str(ARTIFACTS / "newcomer-busy.png"))
    open_tab(page, "layout")
    visible(page, "button", "Generate").click()  # again, mid-run: it says why nothing starts
    page.get_by_text("still going").first.wait_for(timeout=5_000)

    visible(page, "button", "Cancel").click()
    shown: set[str] = set()  # every message the page showed from Cancel on
    deadline = time.monotonic() + 30
    while studio.manager.status()["busy"] is not None:
        assert time.monotonic() < deadline, "the engine kept running after Cancel"
        shown.update(toasts(page))
        page.wait_for_timeout(100)
    assert outcomes.seen == ["cancelled"]
    stopped = time.monotonic()
    while busy.is_visible() or time.monotonic() < stopped + 2:  # the page once the run ended
        assert time.monotonic() < stopped + 5, "the busy line stayed after the run stopped"
        shown.update(toasts(page))
        page.wait_for_timeout(100)
    page.screenshot(path=str(ARTIFACTS / "newcomer-cancelled.png"))
    assert [t for t in shown if "Cancelled" in t], shown
    assert not [t for t in shown if "Error" in t or "went wrong" in t], shown


def test_every_tab_says_where_to_start_and_that_it_runs_on_a_cpu(page):
    start = START_HERE.split(":")[0].strip("*")  # "Start here"
    for cap in CAPABILITIES:
        open_tab(page, cap.key)
        line = page.locator(".zss-start-here").locator("visible=true").first
        line.wait_for(timeout=5_000)
        assert start in line.inner_text(), cap.key
        assert line.bounding_box()["y"] < 900, f"{cap.key}: the start line is below the fold"
        notice = page.get_by_text("Running on a CPU").locator("visible=true").first
        notice.wait_for(timeout=5_000)  # every tab says it runs on a CPU, and how slowly
        for box in (
            page.locator("textarea[placeholder], input[placeholder]").locator("visible=true").all()
        ):
            hint = box.get_attribute("placeholder")
            assert not hint or hint.startswith("e.g.") or "…" in hint or hint.startswith("Type"), (
                cap.key,
                hint,
            )
    open_tab(page, "gan")  # a 32 px preview is shown large, its pixels square
    rendering, width = page.evaluate(
        """() => {
            const box = document.querySelector('.zss-pixelated');
            const img = document.createElement('img');
            const c = document.createElement('canvas'); c.width = c.height = 32;
            img.src = c.toDataURL(); box.appendChild(img);
            const style = getComputedStyle(img);
            return [style.imageRendering, img.getBoundingClientRect().width];
        }"""
    )
    assert rendering == "pixelated" and width >= 256
    open_tab(page, "about")
    page.get_by_text("No output quality has been measured on real weights yet").first.wait_for()
