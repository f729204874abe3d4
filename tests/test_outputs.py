"""Per-session output folders: runs write only there, old runs are removed on Gradio's
schedule, a session's files go when it ends; and handlers take and return values by name."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import gradio as gr
import pytest
from app_server import served

from engines.errors import InputError
from tabs import session_files as outputs_module
from tabs.forms import Call, connect
from tabs.session_files import DELETE_CACHE, OutputFolders


def test_runs_get_their_own_folder_under_their_session(tmp_path):
    folders = OutputFolders(tmp_path)
    first, second = folders.new("abc"), folders.new("abc")
    assert first != second and first.parent == second.parent == tmp_path / "abc"
    assert folders.new("../../etc").parent == tmp_path / "etc"  # no way out of the root


def test_clean_removes_runs_older_than_the_limit_and_empty_sessions(tmp_path):
    folders = OutputFolders(tmp_path, every=3600, max_age=3600)
    old, fresh = folders.new("s1"), folders.new("s2")
    (old / "image.png").write_bytes(b"x")
    hours_ago = time.time() - 2 * 3600
    os.utime(old, (hours_ago, hours_ago))
    assert folders.clean() == 1
    assert not (tmp_path / "s1").exists() and fresh.is_dir()


def test_cleaning_follows_gradios_delete_cache_schedule(tmp_path):
    import app

    assert (OutputFolders().every, OutputFolders().max_age) == DELETE_CACHE
    demo = app.build_demo(tabs=["speech"])
    assert demo.delete_cache == DELETE_CACHE
    assert any(fn.name == "end_session" for fn in demo.fns.values())
    folders = OutputFolders(tmp_path, every=0, max_age=0)
    stale = folders.new("s")
    folders.new("t")  # due: the next run cleans the stale one
    assert not stale.exists()


def test_drop_session(tmp_path):
    folders = OutputFolders(tmp_path)
    folders.new("gone"), folders.new("kept")
    folders.drop_session("gone")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]


@pytest.fixture
def echo_app(tmp_path, monkeypatch):
    monkeypatch.setattr(outputs_module.OUTPUTS, "_root", tmp_path / "outputs")
    with gr.Blocks() as demo:
        steps = gr.Slider(1, 10, 3, label="Steps")
        prompt = gr.Textbox(label="Prompt")
        text, file = gr.Textbox(), gr.File()

        def echo(values: dict, call: Call) -> dict:
            if not values["prompt"]:
                raise InputError("The prompt is empty.")
            call.progress(0.5, "writing")
            path = call.folder() / "echo.txt"
            path.write_text(f"{values['prompt']} x{values['steps']}")
            return {"file": str(path), "text": path.read_text()}

        connect(
            gr.Button().click,
            echo,
            {"steps": steps, "prompt": prompt},
            {"text": text, "file": file},
            api_name="echo",
        )
    return demo


def test_handlers_by_name_and_files_only_in_the_session_folder(echo_app, tmp_path):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    info = echo_app.get_api_info()["named_endpoints"]["/echo"]["parameters"]
    assert [p["parameter_name"] for p in info] == ["steps", "prompt"]
    before = set(Path(tempfile.gettempdir()).glob("zss-*"))
    with served(echo_app) as url:
        client = Client(url, verbose=False)
        text, file = client.predict(prompt="hi", steps=4, api_name="/echo")
        with pytest.raises(AppError, match="The prompt is empty"):
            client.predict(prompt="", steps=4, api_name="/echo")
    assert text == "hi x4" and Path(file).read_text() == "hi x4"
    written = list((tmp_path / "outputs").glob("*/*/echo.txt"))
    assert len(written) == 1
    assert set(Path(tempfile.gettempdir()).glob("zss-*")) == before  # no stray temp folders


def test_an_upload_gradio_cannot_decode_gets_our_message(tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    from tabs.uploads import explain_processing_errors, image_input

    with gr.Blocks() as demo:
        image, audio, out = image_input(type="filepath"), gr.Audio(type="filepath"), gr.Textbox()
        gr.Button().click(lambda i: "ok", image, out, api_name="image")
        gr.Button().click(lambda a: "ok", audio, out, api_name="audio")
    explain_processing_errors(demo)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with served(demo) as url:
        client = Client(url, verbose=False)
        with pytest.raises(AppError, match="notes.png cannot be read as an image"):
            client.predict(handle_file(str(text)), api_name="/image")
        # gr.Audio passes a file path on undecoded: the engine's own message answers it
        assert client.predict(handle_file(str(text)), api_name="/audio") == "ok"


def test_an_image_upload_over_the_limit_is_refused_from_its_header(tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError
    from PIL import Image
    from test_hostile_inputs import _png_claiming

    from tabs.uploads import (
        MAX_IMAGE_SIDE,
        explain_processing_errors,
        image_input,
        limit_image_decoding,
    )

    saved = Image.MAX_IMAGE_PIXELS
    limit_image_decoding()
    try:
        with gr.Blocks() as demo:
            image, out = image_input(type="filepath"), gr.Textbox()
            gr.Button().click(lambda i: "ok", image, out, api_name="image")
        explain_processing_errors(demo)
        huge = tmp_path / "huge.png"
        huge.write_bytes(_png_claiming(50000, 50000))
        with served(demo) as url:
            client = Client(url, verbose=False)
            with pytest.raises(AppError, match=f"huge.png is too large: .* {MAX_IMAGE_SIDE} px"):
                client.predict(handle_file(str(huge)), api_name="/image")
    finally:
        Image.MAX_IMAGE_PIXELS = saved
