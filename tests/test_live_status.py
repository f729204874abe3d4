"""What a newcomer is told while and after things happen, through gradio_client: inputs Gradio
cannot read (also after an event updated the widget), outputs it cannot show, an Example whose
cached files vanished, a cancelled run (no error), the busy line, and /system_status once a
cancelled run stopped."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import gradio as gr
import pytest
from app_server import served
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from test_cancel import Slow

import app
from engines.errors import Cancelled
from engines.registry import override_variable
from engines.studio import Studio
from tabs.common import recipe_file
from tabs.examples import examples, file_paths
from tabs.forms import Call, connect
from tabs.running_calls import CANCEL_PRESSED, RUNS
from tabs.system import busy_text
from tabs.uploads import explain_processing_errors

ASSET = Path(__file__).resolve().parents[1] / "assets" / "compression" / "coffee.png"


def test_an_unreadable_upload_after_an_update_of_its_widget_gets_our_message(tmp_path):
    """An event that updates a widget's properties (an Example click does) gives the session a
    copy of that widget; what Gradio cannot decode into the copy is still told in our words."""
    with gr.Blocks() as demo:
        image, out = gr.Image(type="filepath", label="Photo"), gr.Textbox()
        gr.Button().click(
            lambda: gr.update(value=str(ASSET), label="Photo, filled"), None, image, api_name="fill"
        )
        gr.Button().click(lambda i: "read", image, out, api_name="read")
    explain_processing_errors(demo)
    bad = tmp_path / "holiday.png"
    bad.write_text("a text file, not a picture")
    with served(demo) as url:
        client = Client(url, verbose=False)
        client.predict(api_name="/fill")
        with pytest.raises(AppError, match=r"^holiday.png cannot be read as an image"):
            client.predict(handle_file(str(bad)), api_name="/read")
        assert client.predict(handle_file(str(ASSET)), api_name="/read") == "read"


def test_an_output_gradio_cannot_show_gets_an_error_id(caplog):
    with gr.Blocks() as demo:
        out = gr.Image()
        gr.Button().click(lambda: 12345, None, out, api_name="broken")
    explain_processing_errors(demo)
    with served(demo) as url:
        with pytest.raises(
            AppError, match=r"Something went wrong on the server \(error id (\w+)\)"
        ):
            Client(url, verbose=False).predict(api_name="/broken")
    assert "in showing the outputs of" in caplog.text  # the log holds the id and the traceback


def test_an_example_whose_cached_files_vanished_is_processed_again():
    with gr.Blocks():
        image = gr.Image(type="filepath")
        shown = examples([[str(ASSET)]], [image], "Compress")
    (example,) = shown.non_none_examples
    (cached,) = file_paths(shown._get_processed_example(example))
    Path(cached).unlink()
    (again,) = file_paths(shown._get_processed_example(example))
    assert Path(again).is_file() and Path(again).read_bytes() == ASSET.read_bytes()


@pytest.fixture
def slow_app():
    slow = Slow()

    def slow_handler(values: dict, call: Call) -> dict:
        return slow(values, call)

    with gr.Blocks() as demo:
        text, out = gr.Textbox(label="Text"), gr.Textbox(label="Out")
        connect(gr.Button().click, slow_handler, {"text": text}, {"out": out}, api_name="slow")
    demo.queue()
    with served(demo) as url:
        yield slow, url


def test_a_run_its_cancel_stopped_ends_without_an_error_and_shows_on_the_busy_line(slow_app):
    slow, url = slow_app
    job = Client(url, verbose=False).submit("hello", api_name="/slow")
    assert slow.started.wait(20)
    time.sleep(0.2)
    line = busy_text({"busy": "slow engine"}, RUNS.progress())
    assert line.startswith("**busy:** slow engine, step ") and "%)" in line
    (session,) = {c.session for c in RUNS._calls.values()}
    assert RUNS.cancel(session, "slow", CANCEL_PRESSED) == 1  # what the Cancel button does
    job.result(timeout=20)  # no AppError: a cancelled run is not a failure
    assert "Cancel pressed" in slow.outcome
    assert busy_text({"busy": None}, RUNS.progress()) == ""


def test_a_cancel_that_is_not_the_calls_own_is_still_an_error():
    def handler(values: dict, call: Call) -> dict:
        raise Cancelled()  # e.g. from a remote engine, while this call was never cancelled

    with gr.Blocks() as demo:
        connect(gr.Button().click, handler, {}, {"out": gr.Textbox()}, api_name="other")
    with served(demo) as url:
        with pytest.raises(AppError, match="Cancelled"):
            Client(url, verbose=False).predict(api_name="/other")


def test_recipes_are_named_by_task(tmp_path):
    from engines.recipes import Recipe

    class Made:
        def __init__(self, recipe):
            self.recipe = recipe

    tts = Made(Recipe(engine="speech", params={"task": "tts"}, models={}, seed=0))
    layout = Made(Recipe(engine="layout", params={}, models={}, seed=0))
    assert Path(recipe_file(tts, tmp_path)).name == "speech-tts-recipe.json"
    assert Path(recipe_file(layout, tmp_path)).name == "layout-recipe.json"


@pytest.mark.e2e
def test_system_status_stops_saying_busy_within_a_second_of_a_cancelled_run_stopping(
    tiny_sd15_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv(override_variable("layout", "sd15"), str(tiny_sd15_dir))
    monkeypatch.setenv(override_variable("layout", "detector"), str(tmp_path / "no-detector"))
    studio = Studio(device="cpu")
    engine = studio.engine("layout")
    real_run, stopped = engine.run, threading.Event()
    stopped_at: list[float] = []

    def run(request, progress=None):
        try:
            return real_run(request, progress)
        finally:
            stopped_at.append(time.monotonic())
            stopped.set()

    monkeypatch.setattr(engine, "run", run)
    with served(app.build_demo(tabs=["layout"], studio=studio)) as url:
        client = Client(url, verbose=False)
        job = client.submit(
            prompt="a cat", boxes=[], steps=150, width=256, height=256, api_name="/layout_to_image"
        )
        deadline = time.monotonic() + 120
        while client.predict(api_name="/system_status")["busy"] != "layout":
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.05)
        job.cancel()
        assert stopped.wait(60), "the run kept going after job.cancel()"
        while client.predict(api_name="/system_status")["busy"] is not None:
            time.sleep(0.05)
        assert time.monotonic() - stopped_at[0] < 1.0
