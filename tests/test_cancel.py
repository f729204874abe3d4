"""Cancel: the token engines check between steps, the calls `connect` tracks, and a served app
where a cancelled job, a Cancel button and a client that goes away each stop the run itself,
not only the page's view of it."""

from __future__ import annotations

import threading
import time

import gradio as gr
import httpx
import pytest
from app_server import served
from gradio_client import Client

from engines.cancel import CancelToken, cancellable
from engines.errors import Cancelled
from tabs.forms import Call, connect
from tabs.running_calls import RUNS, RunningCalls

pytestmark = pytest.mark.e2e


def test_a_cancelled_token_stops_the_next_progress_report():
    reports, token = [], CancelToken()
    progress = cancellable(lambda f, what: reports.append(what), token)
    progress(0.1, "step 1")
    called = []
    token.on_cancel(lambda: called.append("now"))
    token.cancel("Cancel pressed")
    with pytest.raises(Cancelled, match="Cancel pressed"):
        progress(0.2, "step 2")
    assert reports == ["step 1"] and called == ["now"]
    token.on_cancel(lambda: called.append("late"))  # registered after: runs at once
    assert called == ["now", "late"]


def test_running_calls_cancel_by_session_and_event():
    runs = RunningCalls(every=0.01)
    a, b, c = CancelToken(), CancelToken(), CancelToken()
    with runs.track("s1", "tts", a), runs.track("s1", "compress", b), runs.track("s2", "tts", c):
        assert sorted(runs.running("s1")) == ["compress", "tts"]
        assert runs.cancel("s1", "tts") == 1
        assert a.cancelled and not b.cancelled and not c.cancelled
        assert runs.cancel("s1") == 2 and b.cancelled and not c.cancelled
    assert runs.running() == []
    assert runs.cancel("s2") == 0


class Slow:
    """A handler that reports progress every 20 ms for `steps` steps, as an engine does, and
    records how it ended."""

    def __init__(self, steps: int = 500):
        self.steps = steps
        self.started = threading.Event()
        self.ended = threading.Event()
        self.outcome = ""
        self.done_steps = 0

    def __call__(self, values: dict, call: Call) -> dict:
        self.started.set()
        try:
            for step in range(self.steps):
                call.progress(step / self.steps, f"step {step + 1}")
                self.done_steps = step + 1
                time.sleep(0.02)
            self.outcome = "finished"
            return {"out": f"{values['text']}: done"}
        except Cancelled as err:
            self.outcome = str(err)
            raise
        finally:
            self.ended.set()


@pytest.fixture
def slow_app():
    slow = Slow()

    def slow_handler(values: dict, call: Call) -> dict:
        return slow(values, call)

    with gr.Blocks() as demo:
        text = gr.Textbox(label="Text")
        out = gr.Textbox(label="Out")
        run, cancel = gr.Button("Run"), gr.Button("Cancel")
        connect(
            run.click, slow_handler, {"text": text}, {"out": out}, api_name="slow", cancel=cancel
        )
    demo.queue()
    with served(demo) as url:
        yield slow, url


def test_a_cancelled_job_stops_the_running_handler(slow_app):
    slow, url = slow_app
    job = Client(url, verbose=False).submit("hello", api_name="/slow")
    assert slow.started.wait(20)
    time.sleep(0.2)
    job.cancel()
    assert slow.ended.wait(5), "the handler kept running after the job was cancelled"
    assert "Cancelled" in slow.outcome and slow.done_steps < slow.steps
    assert RUNS.running() == []


def test_a_client_that_goes_away_stops_the_running_handler(slow_app):
    """The page (or an API client) closes its event stream mid-run: Gradio marks the event dead
    and the run stops at its next step."""
    slow, url = slow_app
    session = "gone-client"
    info = httpx.get(f"{url}config").json()
    (fn_index,) = [d["id"] for d in info["dependencies"] if d.get("api_name") == "slow"]
    joined = httpx.post(
        f"{url}gradio_api/queue/join",
        json={"data": ["hi"], "fn_index": fn_index, "session_hash": session, "trigger_id": None},
    )
    assert joined.status_code == 200, joined.text
    with httpx.stream("GET", f"{url}gradio_api/queue/data", params={"session_hash": session}) as r:
        for line in r.iter_lines():
            if "process_starts" in line:
                break
    assert slow.started.wait(20)
    assert slow.ended.wait(10), "the handler kept running after its client went away"
    assert "the client went away" in slow.outcome


def test_cancel_of_a_session_stops_its_runs(slow_app):
    """What the app does when a browser tab closes (`app.end_session`)."""
    slow, url = slow_app
    Client(url, verbose=False).submit("hello", api_name="/slow")
    assert slow.started.wait(20)
    (session,) = {c.session for c in RUNS._calls.values()}
    assert RUNS.cancel(session, reason="the browser tab closed") == 1
    assert slow.ended.wait(5)
    assert "the browser tab closed" in slow.outcome


def test_a_handler_that_finishes_is_not_cancelled(slow_app):
    slow, url = slow_app
    slow.steps = 5
    assert Client(url, verbose=False).predict("hi", api_name="/slow") == "hi: done"
    assert slow.outcome == "finished"


def test_a_streaming_handler_stops_its_background_work_when_cancelled():
    """A generator handler (GAN's adapt) hands its worker's stop to `call.on_cancel`."""
    stopped, started = threading.Event(), threading.Event()

    def stream(values: dict, call: Call):
        call.on_cancel(stopped.set)
        started.set()
        for step in range(1000):
            yield {"out": f"step {step}"}
            if stopped.wait(0.02):
                return

    with gr.Blocks() as demo:
        text, out, button = gr.Textbox(), gr.Textbox(), gr.Button()
        connect(button.click, stream, {"text": text}, {"out": out}, api_name="stream")
    demo.queue()
    with served(demo) as url:
        job = Client(url, verbose=False).submit("x", api_name="/stream")
        assert started.wait(20)
        time.sleep(0.3)
        job.cancel()
        assert stopped.wait(5), "the worker was not told to stop"
