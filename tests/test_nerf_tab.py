"""The NeRF tab: its wiring, and reconstruct -> edit -> render through gradio_client against the
launched app (tiny SD-1.5-structured VAE/UNet and a tiny open_clip behind it)."""

from __future__ import annotations

import time

import pytest
from app_server import served
from tiny_gan import save_tiny_open_clip

from app import build_demo
from engines.base import no_progress
from engines.nerf.example import write_example
from engines.nerf.requests import EXAMPLE, ReconstructRequest
from engines.nerf.scene_file import load_scene_file
from engines.studio import Studio
from tabs.forms import Call
from tabs.live_run import stream
from tabs.nerf import LOSSES

pytestmark = pytest.mark.usefixtures("one_thread")

FIT = dict(
    resolution=32, steps=20, grid=16, samples=16, batch_rays=256, background="white",
    preview_every=10, seed=0,
)  # fmt: skip


@pytest.fixture(scope="module")
def demo(tiny_sd15_dir, tmp_path_factory):
    clip = save_tiny_open_clip(tmp_path_factory.mktemp("clip"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ZSS_MODEL_NERF_SD15", str(tiny_sd15_dir))
        patch.setenv("ZSS_MODEL_NERF_CLIP", str(clip))
        yield build_demo(tabs=["nerf"], studio=Studio(device="cpu"))


def test_tab_wiring(demo):
    events = {fn.api_name: fn for fn in demo.fns.values() if fn.api_name}
    assert {"nerf_reconstruct", "nerf_edit", "nerf_render", "nerf_stop"} <= set(events)
    for name in ("nerf_reconstruct", "nerf_edit", "nerf_render"):
        assert events[name].concurrency_id == "gpu", name
    assert events["nerf_stop"].concurrency_id != "gpu"  # must run while fitting
    kinds = [type(block).__name__ for block in events["nerf_edit"].outputs]
    assert "Video" in kinds and "File" in kinds and "LinePlot" in kinds
    assert not demo.studio.manager.is_loaded("nerf")


@pytest.mark.e2e
def test_reconstruct_edit_render_through_the_api(demo, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    scene = write_example(tmp_path / "scene", 32)
    archive = tmp_path / "scene.zip"
    import zipfile

    with zipfile.ZipFile(archive, "w") as out:
        for path in scene.rglob("*"):
            out.write(path, path.relative_to(scene))
    with served(demo) as url:
        client = Client(url, verbose=False)
        status, _, _, metrics, fitted, _ = client.predict(  # the run id stays in the session
            scene=handle_file(str(archive)), **FIT, api_name="/nerf_reconstruct"
        )
        assert "done: 20/20" in status
        assert "heldout_psnr_rgb" in metrics  # the API returns the raw metrics
        load_scene_file(fitted)

        edit = dict(scene=handle_file(fitted), source="a toy", target="a golden toy", mode="dds")
        edit.update(steps=2, guidance_scale=7.5, lr=5e-3, t_min=50, t_max=950)
        edit.update(switch_every=1, frames=4, preview_every=1, seed=0)
        outputs = client.predict(**edit, api_name="/nerf_edit")
        assert "done: 2/2" in outputs[0]
        video, edited = outputs[2], outputs[5]
        assert str(video).endswith(".mp4")  # a file path
        assert load_scene_file(edited)[1].edits[0]["target"] == "a golden toy"

        still, video, _, _ = client.predict(
            scene=handle_file(fitted), compare=handle_file(edited), decode="latent", frames=4,
            fps=12, azimuth=30, elevation=25, distance=1.0, api_name="/nerf_render",
        )  # fmt: skip
        assert still and str(video).endswith(".mp4")

        with pytest.raises(AppError, match="the edit would do nothing"):
            client.predict(**{**edit, "target": "a toy"}, api_name="/nerf_edit")


def runs_in_progress(demo) -> list[str]:
    return demo.studio.engine("nerf").running()


def wait_until(condition, seconds: float) -> bool:
    deadline = time.time() + seconds
    while not condition() and time.time() < deadline:
        time.sleep(0.1)
    return condition()


def test_a_cancelled_call_stops_its_fit_without_waiting_for_the_stream(demo):
    """Once the call is cancelled (a closed tab, a lost client, Cancel), the fit stops at its
    next step, even while nobody reads the stream of updates any more."""
    call = Call(no_progress, "a-session")
    request = ReconstructRequest(scene=EXAMPLE, **{**FIT, "steps": 30_000})
    updates = stream(demo.studio, "nerf", request, call, LOSSES, progress_bar=True)
    assert "Encoding" in next(updates)["status"]
    assert runs_in_progress(demo)
    call.token.cancel("the client went away")
    assert wait_until(lambda: not runs_in_progress(demo), 10), "the fit went on"
    updates.close()


@pytest.mark.e2e
@pytest.mark.parametrize("how", ["client gone", "tab closed"])
def test_a_fit_stops_when_its_client_leaves(demo, how):
    """The page's event stream closes mid-fit, or its browser tab closes (`app.end_session`):
    the fit itself stops, not only the page's view of it."""
    import httpx

    from tabs.running_calls import RUNS, SESSION_ENDED

    session = f"leaving-{how.replace(' ', '-')}"
    order = ("resolution", "steps", "grid", "samples", "batch_rays", "background")
    data = [None, *({**FIT, "steps": 30_000}[k] for k in order), "auto", FIT["preview_every"], 0]
    with served(demo) as url:
        info = httpx.get(f"{url}config").json()
        (fn,) = [d["id"] for d in info["dependencies"] if d.get("api_name") == "nerf_reconstruct"]
        joined = httpx.post(
            f"{url}gradio_api/queue/join",
            json={"data": data, "fn_index": fn, "session_hash": session, "trigger_id": None},
        )
        assert joined.status_code == 200, joined.text
        params = {"session_hash": session}
        with httpx.stream("GET", f"{url}gradio_api/queue/data", params=params, timeout=120) as r:
            for line in r.iter_lines():
                if "Step 10/" in line:
                    break
            assert runs_in_progress(demo)
            if how == "tab closed":
                assert RUNS.cancel(session, reason=SESSION_ENDED) == 1
                assert wait_until(lambda: not runs_in_progress(demo), 10), "the fit went on"
        assert wait_until(lambda: not runs_in_progress(demo), 10), "the fit went on"


def test_scene_uploads_are_read_off_the_event_loops_thread(demo):
    """The NeRF events read scene zips, transforms.json and .nerf files inside their
    handlers, and every handler is plain (sync) code: Gradio runs those in its worker threads
    (anyio's thread pool), never on the event loop's thread, so a slow parse does not stall
    other routes. (Metadata files over 8 MB are refused unread: a parse holds the GIL.)"""
    import inspect

    events = {fn.api_name: fn for fn in demo.fns.values() if fn.api_name}
    for name in ("nerf_reconstruct", "nerf_edit", "nerf_render"):
        handler = events[name].fn
        assert not inspect.iscoroutinefunction(handler), name
        assert not inspect.isasyncgenfunction(handler), name
