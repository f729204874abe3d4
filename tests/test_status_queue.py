"""A full queue refuses new model runs, not the System status (issue: /system_status answered
"Queue is full" while QUEUE_SIZE runs waited)."""

from __future__ import annotations

import threading
import time

import pytest
from app_server import served
from gradio_client import Client, handle_file
from PIL import Image
from tiny_compression import compression_studio, tiny_amused_in, tiny_photo

import app

pytestmark = pytest.mark.e2e


def test_the_status_answers_while_the_queue_is_full(tmp_path_factory, monkeypatch):
    base = tmp_path_factory.getbasetemp()
    studio, undo = compression_studio(tiny_amused_in(base), base / "zss-cache")
    release = threading.Event()
    started = threading.Event()

    def blocked_run(request, progress=None):
        started.set()
        release.wait(60)
        raise RuntimeError("released")

    monkeypatch.setattr(app, "QUEUE_SIZE", 2)
    demo = app.build_demo(tabs=["compression"], studio=studio)
    monkeypatch.setattr(studio.engine("compression"), "run", blocked_run)
    photo = base / "status-photo.png"
    Image.fromarray(tiny_photo(32, 32)).save(photo)
    try:
        with served(demo) as url:
            clients = [Client(url, verbose=False) for _ in range(4)]
            args = (handle_file(str(photo)), 16, "fixed")
            jobs = [clients[0].submit(*args, api_name="/compress")]
            assert started.wait(30)
            jobs += [c.submit(*args, api_name="/compress") for c in clients[1:3]]  # 2 waiting
            deadline = time.time() + 30
            while len(demo._queue) < 2 and time.time() < deadline:
                time.sleep(0.05)
            assert len(demo._queue) == 2
            with pytest.raises(Exception, match="Queue is full"):
                clients[3].predict(*args, api_name="/compress")
            status = clients[3].predict(api_name="/system_status")
            assert status["device"] and "version" in status
            release.set()
            for job in jobs:
                with pytest.raises(Exception):  # noqa: B017 - the blocked runs end in an error
                    job.result(timeout=60)
    finally:
        release.set()
        undo()
