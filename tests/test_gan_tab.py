"""The GAN tab: its wiring, and the launched app end to end through gradio_client."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from app_server import served
from tiny_gan import save_tiny_generator, save_tiny_open_clip

from app import build_demo
from engines.base import no_progress
from engines.gan.checkpoint import load_generator
from engines.gan.requests import AdaptRequest
from engines.studio import Studio
from tabs import session_files as outputs_module
from tabs.forms import Call
from tabs.gan import LOSSES
from tabs.live_run import stream

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]
ADAPT_ARGS = dict(
    model="cat256",
    source="photo",
    target="pencil sketch",
    method="svl",
    iterations=10,
    seed=0,
    batch=3,
    micro_batch=None,
    lr=0.002,
    preview_every=5,
    truncation=0.7,
    train_truncation=0.7,
    grid_size=2,
    eval_samples=4,
    second_clip=False,
    layer_k=0,
    variations=3,
    lambda_div=1.0,
    stage1_iterations=0,
    lambda_cov=1e3,
    lambda_ewc=1e7,
    lambda_rel=1e2,
)

SAMPLE_PARAMS = ["checkpoint", "count", "seed", "truncation", "target"]
ADAPT_OUTPUTS = [  # what /adapt_gan returns, in order (the run id is state, not returned)
    "status",
    "preview",
    "before_after",
    "losses",
    "metrics",
    "adapted_file",
    "recipe",
]


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-gan-tab")
    return save_tiny_generator(folder / "cat.pt", size=32), save_tiny_open_clip(folder / "clip")


@pytest.fixture
def outputs_root(tmp_path, monkeypatch):
    monkeypatch.setattr(outputs_module.OUTPUTS, "_root", tmp_path / "outputs")
    return tmp_path / "outputs"


def adapted(outputs) -> dict:
    return dict(zip(ADAPT_OUTPUTS, outputs, strict=True))


@pytest.fixture
def demo(tiny_files, local_model, outputs_root):
    generator, clip = tiny_files
    local_model("gan", "cat256", generator)
    local_model("gan", "clip", clip)
    return build_demo(tabs=["gan"], studio=Studio(device="cpu"))


def test_tab_wiring(demo):
    events = {fn.api_name: fn for fn in demo.fns.values() if fn.api_name}
    assert {"adapt_gan", "sample_gan", "stop_gan"} <= set(events)
    assert events["adapt_gan"].concurrency_id == "gpu"
    assert events["sample_gan"].concurrency_id == "gpu"
    assert events["stop_gan"].concurrency_id != "gpu"  # must run while adapting
    assert len(events["adapt_gan"].inputs) == len(ADAPT_ARGS)
    api = demo.get_api_info()["named_endpoints"]
    assert [p["parameter_name"] for p in api["/adapt_gan"]["parameters"]] == list(ADAPT_ARGS)
    assert [p["parameter_name"] for p in api["/sample_gan"]["parameters"]] == SAMPLE_PARAMS
    returns = api["/adapt_gan"]["returns"]
    assert returns[0]["component"] == "Markdown"
    assert [r["label"] for r in returns] == ADAPT_OUTPUTS  # short names
    assert not demo.studio.manager.is_loaded("gan")  # nothing loads at build time


def test_building_the_tab_imports_no_torch():
    """House rule: nothing heavy at app start; the engine (and torch) load on first use."""
    code = "import sys, app; app.build_demo(tabs=['gan']); assert 'torch' not in sys.modules"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.e2e
def test_adapt_then_sample_through_the_api(demo, outputs_root):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    with served(demo) as url:
        client = Client(url, verbose=False)
        out = adapted(client.predict(**ADAPT_ARGS, api_name="/adapt_gan"))
        assert "done: 10/10" in out["status"]
        assert out["before_after"] and out["recipe"]
        assert "clip_target_score_after" in out["metrics"]  # the raw metrics
        weights = out["adapted_file"]
        generator, _ = load_generator(weights)
        assert generator.config.size == 32
        # the run's files are in the session's run folder
        (written,) = outputs_root.glob("*/*/cat256-adapted.pt")
        assert (written.parent / "gan-adapt-recipe.json").is_file()

        gallery, sample_metrics, _ = client.predict(
            handle_file(weights), 3, 1, 0.7, "pencil sketch", api_name="/sample_gan"
        )
        assert len(gallery) == 3
        assert "clip_target_score" in sample_metrics

        with pytest.raises(AppError, match="target text"):
            client.predict(**{**ADAPT_ARGS, "target": ""}, api_name="/adapt_gan")


@pytest.mark.e2e
def test_stop_keeps_the_result_so_far(demo):
    from gradio_client import Client

    with served(demo) as url:
        client = Client(url, verbose=False)
        job = client.submit(
            **{**ADAPT_ARGS, "iterations": 2000, "preview_every": 1}, api_name="/adapt_gan"
        )
        deadline = time.time() + 60
        while "Iteration" not in str(job.outputs()[-1:]) and time.time() < deadline:
            time.sleep(0.2)
        assert "stopping" in client.predict(api_name="/stop_gan").lower()
        out = adapted(job.result(timeout=120))
        assert "stopped early" in out["status"]
        generator, _ = load_generator(out["adapted_file"])
        w = generator.mapping(torch.randn(1, 32))
        assert torch.isfinite(generator(w)).all()


def test_a_cancelled_call_stops_its_adaptation_without_waiting_for_the_stream(demo):
    """The NeRF tab's twin: one helper streams both engines' runs and hands Cancel to them."""
    call = Call(no_progress, "a-session")
    request = AdaptRequest(**{**ADAPT_ARGS, "iterations": 2000, "preview_every": 1})
    updates = stream(demo.studio, "gan", request, call, LOSSES)
    next(updates)
    engine = demo.studio.engine("gan")
    assert engine.running()
    call.token.cancel("the client went away")
    deadline = time.time() + 20
    while engine.running() and time.time() < deadline:
        time.sleep(0.1)
    assert not engine.running(), "the adaptation went on"
    updates.close()
