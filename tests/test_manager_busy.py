"""The model manager while a model runs: status answers at once, a release waits for the run."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import torch

from engines.device import DeviceSpec
from engines.errors import InputError
from engines.manager import ModelManager
from engines.registry import Registry

CPU = DeviceSpec("cpu", "float32")
LINEAR_BYTES = (1000 * 100 + 100) * 4  # torch.nn.Linear(1000, 100) in float32


def linear_loader(context) -> dict[str, Any]:
    return {"net": torch.nn.Linear(1000, 100)}


def blocking_loader(started: threading.Event, finish: threading.Event):
    def load(context) -> dict[str, Any]:
        started.set()
        assert finish.wait(10), "the test never let the load finish"
        return {"net": torch.nn.Linear(1000, 100)}

    return load


def in_thread(target, *args) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def timed(call, *args):
    start = time.perf_counter()
    value = call(*args)
    return value, time.perf_counter() - start


@pytest.fixture
def manager():
    manager = ModelManager(Registry.load(), CPU)
    manager.register("fast", linear_loader)
    return manager


def hold_a_run(manager: ModelManager, engine: str, running: threading.Event, end: threading.Event):
    with manager.use(engine):
        running.set()
        assert end.wait(10), "the test never ended the run"


def test_status_answers_at_once_while_a_model_runs(manager):
    running, end = threading.Event(), threading.Event()
    thread = in_thread(hold_a_run, manager, "fast", running, end)
    try:
        assert running.wait(5)
        status, seconds = timed(manager.status)
        assert seconds < 1.0
        assert status["busy"] == "fast"
        assert status["loaded"]["fast"]["weights_mb"] == pytest.approx(
            LINEAR_BYTES / 2**20, abs=0.05
        )
    finally:
        end.set()
        thread.join(10)
    assert manager.status()["busy"] is None


def test_status_answers_at_once_while_a_model_loads(manager):
    started, finish = threading.Event(), threading.Event()
    manager.register("slow", blocking_loader(started, finish))
    thread = in_thread(manager.load, "slow")
    try:
        assert started.wait(5)
        status, seconds = timed(manager.status)
        assert seconds < 1.0
        assert status["busy"] == "slow" and status["loaded"] == {}
    finally:
        finish.set()
        thread.join(10)
    assert list(manager.status()["loaded"]) == ["slow"]


def test_releasing_a_busy_engine_is_queued_until_its_run_ends(manager):
    running, end = threading.Event(), threading.Event()
    thread = in_thread(hold_a_run, manager, "fast", running, end)
    try:
        assert running.wait(5)
        released, seconds = timed(manager.release, "fast")
        assert seconds < 1.0
        assert released == []  # not now: the run holds the models
        assert manager.is_loaded("fast")
        assert manager.status()["release_pending"] == ["fast"]
    finally:
        end.set()
        thread.join(10)
    assert not manager.is_loaded("fast")  # released as the run ended
    status = manager.status()
    assert status["loaded"] == {} and status["release_pending"] == []


def test_release_all_while_loading_frees_when_the_load_ends(manager):
    started, finish = threading.Event(), threading.Event()
    manager.register("slow", blocking_loader(started, finish))
    thread = in_thread(manager.load, "slow")
    try:
        assert started.wait(5)
        released, seconds = timed(manager.release, None)
        assert seconds < 1.0 and released == []
        assert manager.status()["release_pending"] == ["all"]
    finally:
        finish.set()
        thread.join(10)
    assert not manager.is_loaded("slow")


def test_releasing_an_unknown_engine_while_busy_is_an_input_error(manager):
    running, end = threading.Event(), threading.Event()
    thread = in_thread(hold_a_run, manager, "fast", running, end)
    try:
        assert running.wait(5)
        with pytest.raises(InputError, match="not loaded"):
            manager.release("teleport")
    finally:
        end.set()
        thread.join(10)


def test_idle_release_is_immediate(manager):
    manager.load("fast")
    assert manager.release("fast") == ["fast"]
    assert manager.status()["loaded"] == {}
