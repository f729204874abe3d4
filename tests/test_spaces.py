"""The Hugging Face Spaces path: with `spaces` installed and SPACES_ZERO_GPU unset the handlers
are the plain ones and the app serves; with it set, every model handler asks ZeroGPU for a GPU
for as long as its capability needs and nothing else does; requirements.txt alone provides
every import; the README's front matter is a valid Space configuration."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

import app

ROOT = Path(__file__).resolve().parents[1]
spaces = pytest.importorskip("spaces", reason="the dev extra installs `spaces`")

GPU_SECONDS = {  # what each model event asks ZeroGPU for
    "layout_generate": 120,
    "layout_to_image": 120,
    "tts": 60,
    "voice_convert": 60,
    "adapt_gan": 600,
    "sample_gan": 60,
    "compress": 60,
    "restore_tokens": 60,
    "decompress": 60,
    "nerf_reconstruct": 600,
    "nerf_edit": 600,
    "nerf_render": 120,
}
NEVER_ON_GPU = {"stop_gan", "nerf_stop", "system_status", "release_engine"}

REPORT = """
import json, app
from engines.studio import Studio, on_zero_gpu
demo = app.build_demo(studio=Studio(device="cpu"))
print(json.dumps({
    "zero_gpu": on_zero_gpu(),
    "events": {
        fn.api_name: {
            "wrapped": hasattr(fn.fn, "zerogpu"),
            "seconds": getattr(fn.fn, "gpu_duration", None),
            "gpu_queue": fn.concurrency_id == "gpu",
        }
        for fn in demo.fns.values() if fn.api_name
    },
}))
"""


def report(env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", REPORT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def base_env(monkeypatch) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPACES_", "ZEROGPU"))}
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_without_zero_gpu_the_handlers_are_plain_and_the_app_serves(monkeypatch):
    from app_server import served
    from gradio_client import Client

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    demo = app.build_demo(device="cpu")
    events = [fn for fn in demo.fns.values() if fn.api_name]
    assert not any(hasattr(fn.fn, "zerogpu") for fn in events)
    assert all(getattr(fn.fn, "gpu_duration", 0) == 0 for fn in events)
    with served(demo) as url:
        assert Client(url, verbose=False).predict(api_name="/system_status")["loaded"] == {}


@pytest.mark.e2e
def test_on_zero_gpu_each_model_handler_asks_for_a_gpu_as_long_as_it_needs(monkeypatch):
    env = base_env(monkeypatch)
    env.update(SPACES_ZERO_GPU="true", SPACES_ZERO_DEVICE_API_URL="http://127.0.0.1:9")
    seen = report(env)
    assert seen["zero_gpu"]
    events = seen["events"]
    for name, event in events.items():
        if event["gpu_queue"]:
            assert event["wrapped"], f"{name} runs models without asking ZeroGPU for a GPU"
            if name in GPU_SECONDS:
                assert event["seconds"] == GPU_SECONDS[name], name
        else:
            assert not event["wrapped"], f"{name} would wait for a GPU it does not use"
    assert set(GPU_SECONDS) & set(events) >= {"tts", "compress", "adapt_gan", "layout_to_image"}
    assert all(not events[name]["wrapped"] for name in NEVER_ON_GPU if name in events)
    assert events["adapt_gan"]["seconds"] > events["compress"]["seconds"]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _provided(requirements: list[str]) -> set[str]:
    """The distributions installing these requirements brings, their dependencies included."""
    seen: set[str] = set()
    todo = [Requirement(line).name for line in requirements]
    while todo:
        name = _canonical(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            needs = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for need in needs:
            requirement = Requirement(need)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return seen


def _modules_of(distributions: set[str]) -> set[str]:
    """The top-level modules the installed distributions hold (packages and extension
    modules alike: praat-parselmouth installs parselmouth.cpython-*.so)."""
    modules = set()
    for name in distributions:
        try:
            files = importlib.metadata.distribution(name).files or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for file in files:
            top = file.parts[0]
            if top.endswith((".dist-info", ".data")) or top == "..":
                continue
            modules.add(top.split(".")[0] if len(file.parts) == 1 else top)
    return modules


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_requirements_txt_alone_provides_every_import():
    """What a Space installs (requirements.txt and what it pulls in) covers every module the
    app, the engines and the tabs import. `spaces` comes with ZeroGPU itself."""
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    requirements = [line for line in lines if line and not line.startswith("#")]
    provided = _provided(requirements)
    modules = _modules_of(provided)
    files = [ROOT / "app.py", *ROOT.glob("engines/**/*.py"), *ROOT.glob("tabs/**/*.py")]
    local = {"app", "engines", "tabs"}
    allowed = {
        "spaces",  # ZeroGPU's own package
        "tomli",  # tomllib's backport, before 3.11
        "lpips",  # used only when installed (engines.gan.metrics.local_lpips)
        "ray",  # the scale extra: engines.serving, only under --backend ray / zsstudio serve
    }
    missing = {}
    for path in files:
        for module in _imports(path) - set(sys.stdlib_module_names) - local - allowed:
            if module not in modules:
                missing[module] = str(path.relative_to(ROOT))
    assert not missing, f"imported but not installed from requirements.txt: {missing}"


def test_ci_builds_the_app_from_requirements_txt_alone_first():
    """scripts/check_spaces_install.sh (`make spaces-check`) installs a fresh venv as a Space
    does and builds the app in it; CI runs it before the tests (so pytest's summary stays the
    last line CI prints)."""
    script = ROOT / "scripts" / "check_spaces_install.sh"
    assert subprocess.run(["bash", "-n", str(script)], timeout=30).returncode == 0
    assert "sdk_version" in script.read_text() and "requirements.txt" in script.read_text()
    assert "spaces-check:" in (ROOT / "Makefile").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.index("make spaces-check") < ci.index("make test")


def test_readme_front_matter_is_a_valid_space_configuration():
    from huggingface_hub import SpaceHardware

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["sdk"] == "gradio"
    assert front["sdk_version"] == importlib.metadata.version("gradio")
    pinned = next(
        Requirement(line)
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.startswith("gradio")
    )
    assert front["sdk_version"] in pinned.specifier
    assert (ROOT / front["app_file"]).is_file()
    assert front["suggested_hardware"] in {hardware.value for hardware in SpaceHardware}
    assert re.fullmatch(r"3\.\d+(\.\d+)?", str(front["python_version"]))
    assert front["colorFrom"] in {
        "red",
        "yellow",
        "green",
        "blue",
        "indigo",
        "purple",
        "pink",
        "gray",
    }
    assert front["colorTo"] in {
        "red",
        "yellow",
        "green",
        "blue",
        "indigo",
        "purple",
        "pink",
        "gray",
    }
    assert len(front["short_description"]) <= 60
