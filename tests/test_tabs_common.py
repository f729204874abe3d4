"""What every tab shares: error mapping, progress adapter, recipe files, metric rows."""

from __future__ import annotations

import json
import logging
import re

import gradio as gr
import pytest

from engines.base import Recipe, Result
from engines.errors import InputError, ModelUnavailable
from tabs.common import engine_handler, gradio_progress, metrics_rows, recipe_file


def test_engine_errors_become_gradio_errors_with_the_same_message():
    @engine_handler
    def handler(kind):
        if kind == "input":
            raise InputError("Draw at least one box.")
        raise ModelUnavailable("layout.sd15", "org/repo@main", "Run `zsstudio download layout`.")

    with pytest.raises(gr.Error, match="Draw at least one box."):
        handler("input")
    with pytest.raises(gr.Error, match="zsstudio download layout"):
        handler("model")


def test_unexpected_errors_show_a_short_message_with_an_id_the_log_repeats(caplog):
    @engine_handler
    def handler():
        raise KeyError("/srv/secret/path bug")

    with caplog.at_level(logging.ERROR, logger="zsstudio"), pytest.raises(gr.Error) as raised:
        handler()
    message = raised.value.message
    (error_id,) = re.findall(r"error id ([0-9a-f]{8})", message)
    assert "/srv/secret" not in message and "KeyError" not in message
    (record,) = caplog.records
    assert error_id in record.getMessage() and record.exc_info[0] is KeyError
    assert "Traceback" in caplog.text


def test_gradio_errors_pass_through_unchanged():
    @engine_handler
    def handler():
        raise gr.Error("Upload a WAV file.")

    with pytest.raises(gr.Error, match="Upload a WAV file."):
        handler()


def test_recipe_file_is_the_results_recipe(tmp_path):
    result = Result(recipe=Recipe(engine="layout", params={"prompt": "a cat"}, seed=7))
    with open(recipe_file(result, tmp_path)) as handle:
        data = json.load(handle)
    assert data["engine"] == "layout" and data["seed"] == 7 and data["params"]["prompt"] == "a cat"


def test_metrics_rows_keep_significant_figures_and_carry_the_raw_metrics():
    raw = {"psnr_db": 31.123456, "bytes": 412, "tiny": 2.2e-06}
    rows = metrics_rows(raw)
    assert rows == [["psnr_db", "31.1", ""], ["bytes", "412", ""], ["tiny", "2.2e-06", ""]]
    assert rows.raw == raw  # what the API returns


def test_gradio_progress_adapter_forwards_fraction_and_text():
    calls = []

    class FakeProgress:
        def __call__(self, fraction, desc=None):
            calls.append((fraction, desc))

    update = gradio_progress(FakeProgress())
    update(0.5, "denoising")
    update(1.0)
    assert calls == [(0.5, "denoising"), (1.0, None)]


def test_streaming_handlers_map_errors_mid_stream():
    @engine_handler
    def stream():
        yield 1
        raise InputError("Iterations must be 1 to 2000.")

    updates = stream()
    assert next(updates) == 1
    with pytest.raises(gr.Error, match="Iterations must be 1 to 2000."):
        next(updates)


def test_model_handlers_give_the_heaps_free_memory_back_after_each_run(monkeypatch):
    import tabs.common

    trims = []
    monkeypatch.setattr(tabs.common, "return_freed_memory", lambda: trims.append(1))

    def run(fail=False):
        if fail:
            raise InputError("Upload a photo.")
        return "done"

    def stream():
        yield 1
        yield 2

    model, status = engine_handler(run, gpu_duration=60), engine_handler(run)
    assert model() == "done" and len(trims) == 1
    with pytest.raises(gr.Error):
        model(fail=True)
    assert len(trims) == 2  # after a failed run too
    assert list(engine_handler(stream, gpu_duration=60)()) == [1, 2] and len(trims) == 3
    status()  # no model, polled often: left alone
    assert len(trims) == 3


def test_returning_freed_memory_works_on_this_glibc_machine():
    import platform

    from engines.heap import return_freed_memory

    expected = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert return_freed_memory() is expected
