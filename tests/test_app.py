"""The app shell: flags, errors at start-up, About, packaging for Spaces."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

import app
from engines.capabilities import CAPABILITIES
from engines.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


def run_app(*flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "app.py", *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--tabs", "teleport"], "Unknown capability teleport"),
        (["--models", "/no/such/models.toml"], "does not exist"),
        (["--auth", "nopassword"], "--auth must be USER:PASS"),
        (["--device", "tpu"], "Unknown device"),
        (["--trusted-proxy", "proxy.local"], "is not an IP address or network"),
    ],
)
def test_bad_flags_exit_2_with_one_line(flags, message):
    done = run_app(*flags)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert message in lines[0]
    assert "Traceback" not in done.stderr


def test_parse_auth():
    assert app.parse_auth("ada:s3cr:et") == ("ada", "s3cr:et")
    assert app.parse_auth(None) is None
    with pytest.raises(InputError):
        app.parse_auth(":x")


def top_level_tabs(demo) -> dict[str, str]:
    """id -> label of the app's top-level tabs (sub-tabs inside a capability have no id)."""
    config = demo.get_config_file()
    return {
        c["props"]["id"]: c["props"]["label"]
        for c in config["components"]
        if c["type"] == "tabitem" and c["props"].get("id")
    }


def test_build_demo_has_about_and_system_and_no_placeholder_tabs():
    demo = app.build_demo(device="cpu")
    config = demo.get_config_file()
    expected = {cap.key: cap.title for cap in CAPABILITIES} | {"about": "About"}
    assert top_level_tabs(demo) == expected
    api_names = {dep.get("api_name") for dep in config["dependencies"]}
    assert {"system_status", "release_engine"} <= api_names


def test_build_demo_subset_of_tabs():
    built = CAPABILITIES
    demo = app.build_demo(tabs=[c.key for c in built[:1]], device="cpu")
    assert top_level_tabs(demo) == {"about": "About"} | {c.key: c.title for c in built[:1]}


def test_build_demo_loads_no_weights():
    demo = app.build_demo(device="cpu")
    assert demo.studio.manager.status()["loaded"] == {}


def test_about_says_what_is_the_papers_and_ours():
    from engines.registry import Registry
    from tabs.about import about_markdown

    text = about_markdown(list(CAPABILITIES), Registry.load())
    for cap in CAPABILITIES:
        assert cap.paper in text
        assert cap.ours in text
    assert "CreativeML Open RAIL-M" in text  # a downloaded model's licence is named


def test_requirements_txt_mirrors_pyproject():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    listed = [line for line in lines if line and not line.startswith("#")]
    assert listed == declared


def test_readme_is_a_space_and_shows_the_two_commands_first():
    readme = (ROOT / "README.md").read_text()
    front, _, body = readme.partition("\n---\n")
    assert front.startswith("---\n") and "sdk: gradio" in front and "app_file: app.py" in front
    first_screen = body[:1500]
    assert "make run" in first_screen and "make test" in first_screen
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_building_the_whole_app_imports_no_torch():
    """Nothing heavy at start-up: models and torch load on a tab's first request."""
    code = "import sys, app; app.build_demo(); assert 'torch' not in sys.modules, 'torch'"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
