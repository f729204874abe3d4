"""Headless Chromium opens the app, clicks through every tab, and saves screenshots."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from app_server import served

import app
from engines.capabilities import CAPABILITIES

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def page():
    executable = chromium_path()
    if executable is None:
        reason = "no Chromium on PATH (apt-get install chromium)"
        if os.environ.get("ZSS_REQUIRE_BROWSER"):
            pytest.fail(f"ZSS_REQUIRE_BROWSER is set but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    demo = app.build_demo(device="cpu")
    with served(demo) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url, wait_until="load")
        yield page
        browser.close()


def test_every_tab_renders_and_is_clickable(page):
    ARTIFACTS.mkdir(exist_ok=True)
    page.get_by_text("Zero-Shot Studio", exact=False).first.wait_for()
    tabs = [(cap.key, cap.title) for cap in CAPABILITIES] + [("about", "About")]
    for index, (key, title) in enumerate(tabs):
        tab = page.locator(f'button[role="tab"][data-tab-id="{key}"]')
        assert tab.inner_text().strip() == title
        tab.click()
        assert tab.get_attribute("aria-selected") == "true", title
        page.wait_for_timeout(500)
        page.screenshot(path=str(ARTIFACTS / f"tab-{index}-{key}.png"), full_page=True)
    page.get_by_text("our own implementation", exact=False).first.wait_for()
    for cap in CAPABILITIES:
        page.get_by_text(cap.paper, exact=False).first.wait_for()


def test_system_panel_shows_the_device(page):
    page.get_by_text("System", exact=True).first.click()
    page.get_by_role("button", name="Refresh").click()
    page.get_by_text("cpu (float32)", exact=False).first.wait_for(timeout=15000)
    page.screenshot(path=str(ARTIFACTS / "system-panel.png"), full_page=True)
