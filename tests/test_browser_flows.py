"""Headless Chromium through what a newcomer does, on tiny models of the real classes: a bad
upload gets our message, Cancel stops a run (the engine itself, not only the page), the System
panel answers during a run, a recipe downloaded from the page runs again from the command line,
and on a phone the inputs are near the top."""

from __future__ import annotations

import re
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from app_server import served
from PIL import Image
from test_browser import CHROMIUM_FLAGS, chromium_path
from tiny_compression import compression_studio, tiny_amused_in, tiny_photo

import app
from engines.cli import main
from engines.errors import Cancelled
from engines.registry import override_variable
from tabs.layout import NO_PHRASE

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


class Outcomes:
    """Wraps an engine's real `run` and records how each run ended."""

    def __init__(self, engine):
        self.seen: list[str] = []
        self._run = engine.run

    def __call__(self, request, progress=None):
        try:
            result = self._run(request, progress)
        except Cancelled:
            self.seen.append("cancelled")
            raise
        self.seen.append("finished")
        return result


@pytest.fixture(scope="module")
def browser():
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium on PATH (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def site(studio):
    demo = app.build_demo(tabs=["layout", "compression"], studio=studio)
    with served(demo) as url:
        yield url


@pytest.fixture
def page(browser, site, request):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.goto(site, wait_until="load")
    page.get_by_text("Zero-Shot Studio").first.wait_for()
    # The page-load event sets the CPU-sized values (and shows this notice); on a loaded
    # machine it can land after a value typed here and overwrite it.
    page.get_by_text("Running on a CPU").first.wait_for(timeout=30_000)
    yield page
    if getattr(request.node, "failed_call", False):  # what the page showed when it failed
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"failed-{request.node.name}.png"), full_page=True)
    context.close()


def visible(page, role: str, name: str):
    return page.get_by_role(role, name=name, exact=True).locator("visible=true").first


def set_number(page, elem_id: str, value: int) -> None:
    """Type `value` and leave the box; returns once the page holds it. On a loaded machine the
    prompt's blur event may still be re-rendering the canvas, or the page-load event that fills
    the device-sized values may land after the typing: then it is typed again."""
    box = page.locator(f"#{elem_id} input[type=number]")
    deadline = time.monotonic() + 15
    while box.input_value() != str(value) and time.monotonic() < deadline:
        box.fill(str(value))
        box.press("Enter")
        box.blur()
        page.wait_for_timeout(500)
    assert box.input_value() == str(value)
    page.wait_for_timeout(300)


def test_a_bad_upload_shows_our_message(page, tmp_path):
    page.locator('button[role="tab"][data-tab-id="compression"]').click()
    bad = tmp_path / "holiday.png"
    bad.write_text("this is a text file, not a picture")
    page.locator("#compress-photo input[type=file]").set_input_files(str(bad))
    page.wait_for_timeout(500)
    visible(page, "button", "Compress").click()
    message = page.get_by_text("holiday.png cannot be read as an image")
    message.first.wait_for(timeout=20_000)
    page.screenshot(path=str(ARTIFACTS / "flow-bad-upload.png"))
    assert not page.get_by_text("/tmp/").count()  # no server path in what the user sees


def test_a_photo_too_large_names_the_limit(page, tmp_path):
    page.locator('button[role="tab"][data-tab-id="compression"]').click()
    large = tmp_path / "large.png"
    Image.new("RGB", (4000, 3000), (90, 120, 150)).save(large)
    page.locator("#compress-photo input[type=file]").set_input_files(str(large))
    page.wait_for_timeout(1500)
    visible(page, "button", "Compress").click()
    page.get_by_text("images up to 2048 px a side are accepted").first.wait_for(timeout=30_000)


def test_a_number_past_its_limit_shows_our_message(page):
    page.locator('button[role="tab"][data-tab-id="layout"]').click()
    page.locator("#LayoutRequest-prompt textarea").fill("a cat on a sofa")
    page.get_by_text("Advanced settings").click()
    page.locator("#LayoutRequest-seed input[type=number]").wait_for()
    set_number(page, "LayoutRequest-seed", 5_000_000_000)
    visible(page, "button", "Generate").click()
    message = "seed is 5000000000; it must be 0 to 4294967295."
    page.get_by_text(message).first.wait_for(timeout=30_000)


def test_a_new_box_waits_for_its_phrase(page):
    """The annotator preselects its first label for a new box: that label is "choose a
    phrase…", and Generate names the box still wearing it."""
    page.locator('button[role="tab"][data-tab-id="layout"]').click()
    prompt = page.locator("#LayoutRequest-prompt textarea")
    prompt.fill("a cat on a sofa")
    prompt.blur()  # the canvas now offers the prompt's phrases
    page.wait_for_timeout(1000)
    canvas = page.locator("#layout-canvas canvas").first.bounding_box()
    x, y = canvas["x"] + canvas["width"] / 2 - 60, canvas["y"] + 60
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 120, y + 120, steps=5)
    page.mouse.up()
    picker = page.get_by_label("Label", exact=True).locator("visible=true").first
    picker.wait_for(timeout=5_000)
    assert picker.input_value() == NO_PHRASE
    page.screenshot(path=str(ARTIFACTS / "flow-new-box.png"))
    visible(page, "button", "OK").click()
    visible(page, "button", "Generate").click()
    message = "Box 1 has no phrase; double-click it and pick one of: cat, sofa."
    page.get_by_text(message).first.wait_for(timeout=20_000)


def test_cancel_stops_the_run_and_the_system_panel_answers_meanwhile(page, studio, monkeypatch):
    engine = studio.engine("layout")
    outcomes = Outcomes(engine)
    monkeypatch.setattr(engine, "run", outcomes)
    start_a_long_layout_run(page, studio)

    page.get_by_text("System", exact=True).first.click()
    asked = time.monotonic()
    visible(page, "button", "Refresh").click()
    table = page.locator("#system-status")
    while not re.search(r"running now\s+layout", table.inner_text()):
        assert time.monotonic() - asked < 5, "no answer while the run holds the models"
        page.wait_for_timeout(100)
    assert studio.manager.status()["busy"] == "layout"
    page.screenshot(path=str(ARTIFACTS / "flow-system-during-run.png"), full_page=True)

    visible(page, "button", "Cancel").click()
    deadline = time.monotonic() + 20
    while studio.manager.status()["busy"] is not None:
        assert time.monotonic() < deadline, "the engine kept running after Cancel"
        time.sleep(0.1)
    assert outcomes.seen == ["cancelled"]


def start_a_long_layout_run(page, studio) -> None:
    page.locator('button[role="tab"][data-tab-id="layout"]').click()
    page.locator("#LayoutRequest-prompt textarea").fill("a cat on a sofa")
    page.get_by_text("Advanced settings").click()
    set_number(page, "LayoutRequest-steps", 150)
    visible(page, "button", "Generate").click()
    deadline = time.monotonic() + 60
    while studio.manager.status()["busy"] != "layout":
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.1)


def test_closing_the_tab_stops_its_run(browser, site, studio, monkeypatch):
    engine = studio.engine("layout")
    outcomes = Outcomes(engine)
    monkeypatch.setattr(engine, "run", outcomes)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(site, wait_until="load")
    start_a_long_layout_run(page, studio)
    context.close()  # the browser tab goes away mid-run
    deadline = time.monotonic() + 30
    while studio.manager.status()["busy"] is not None:
        assert time.monotonic() < deadline, "the run kept the models after its tab closed"
        time.sleep(0.1)
    assert outcomes.seen == ["cancelled"]


def test_a_recipe_from_the_page_runs_again(page, tmp_path):
    page.locator('button[role="tab"][data-tab-id="compression"]').click()
    photo = tmp_path / "garden.png"
    Image.fromarray(tiny_photo(72, 52)).save(photo)
    page.locator("#compress-photo input[type=file]").set_input_files(str(photo))
    page.wait_for_timeout(500)
    visible(page, "button", "Compress").click()
    downloads = {}
    for name in ("compress-zsc", "compress-recipe"):
        link = page.locator(f"#{name} a[download]").first
        link.wait_for(timeout=60_000)
        with page.expect_download() as download:
            link.click()
        downloads[name] = tmp_path / download.value.suggested_filename
        download.value.save_as(downloads[name])
    with zipfile.ZipFile(downloads["compress-recipe"]) as bundle:
        assert "inputs/image-garden.png" in bundle.namelist()
    photo.unlink()
    again = tmp_path / "again"
    assert (
        main(["--device", "cpu", "run", str(downloads["compress-recipe"]), "-o", str(again)]) == 0
    )
    (made,) = again.glob("*.zsc")
    assert made.read_bytes() == downloads["compress-zsc"].read_bytes()


def test_on_a_phone_where_to_start_is_above_the_fold_and_the_form_follows(browser, site):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone = context.new_page()
    phone.goto(site, wait_until="load")
    prompt = phone.locator("#LayoutRequest-prompt textarea")
    prompt.wait_for()
    # the newcomer's first step (the start-here line and its examples) is on the first screen,
    # the form right after the examples, within two screens
    start = phone.locator(".zss-start-here").first
    assert start.bounding_box()["y"] < 844 * 0.9
    assert prompt.bounding_box()["y"] < 844 * 2
    phone.screenshot(path=str(ARTIFACTS / "flow-phone.png"))
    array = np.asarray(Image.open(ARTIFACTS / "flow-phone.png"))
    assert array.shape[1] == 390
    context.close()
