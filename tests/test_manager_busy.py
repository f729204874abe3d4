"""The model manager while a model runs: status answers at once, a release waits for the run,
and memory accounting finds modules held inside the engines' own objects."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from engines.device import DeviceSpec
from engines.errors import InputError
from engines.manager import ModelManager
from engines.memory import weight_bytes
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


# -- memory accounting --------------------------------------------------------------------


@dataclass
class Parts:  # like compression's AmusedParts
    vqvae: Any
    transformer: Any
    name: str = "parts"


class Codec:  # like compression's TokenCodec: a plain object holding a dataclass
    def __init__(self, parts: Parts):
        self.parts = parts
        self.vq = Holder(parts.vqvae)  # the same module reached twice


class Holder:
    def __init__(self, module):
        self.module = module


class Converter:  # like speech's KnnVC: modules as attributes, and a `components` property
    def __init__(self):
        self.wavlm = torch.nn.Linear(1000, 100)
        self.vocoder = torch.nn.Linear(1000, 100)

    @property
    def components(self) -> dict:
        return {"wavlm": self.wavlm, "vocoder": self.vocoder}


def test_weights_inside_dataclasses_and_objects_are_counted_once():
    parts = Parts(vqvae=torch.nn.Linear(1000, 100), transformer=torch.nn.Linear(1000, 100))
    held = {"codec": Codec(parts), "knn_vc": Converter(), "label": "x"}
    assert weight_bytes(held) == 4 * LINEAR_BYTES


def test_a_cycle_of_objects_ends_and_deep_modules_are_not_sought_forever():
    a, b = Holder(None), Holder(None)
    a.module, b.module = b, a  # a cycle
    assert weight_bytes({"a": a}) == 0
    deep: Any = torch.nn.Linear(1000, 100)
    for _ in range(10):
        deep = Holder(deep)
    assert weight_bytes({"deep": deep}) == 0  # beyond the depth bound


def test_status_counts_weights_held_inside_an_engine_object(manager):
    parts = Parts(vqvae=torch.nn.Linear(1000, 100), transformer=torch.nn.Linear(1000, 100))
    manager.register("compression", lambda context: {"codec": Codec(parts)})
    manager.load("compression")
    weights_mb = manager.status()["loaded"]["compression"]["weights_mb"]
    assert weights_mb == pytest.approx(2 * LINEAR_BYTES / 2**20, abs=0.05)
    assert weights_mb > 0


def tensor_bytes(*modules) -> int:
    tensors = {id(t): t for m in modules for t in [*m.parameters(), *m.buffers()]}
    return sum(t.numel() * t.element_size() for t in tensors.values())


def test_the_compression_engine_reports_its_weights(tmp_path_factory):
    """The real engine holds a TokenCodec wrapping an AmusedParts dataclass."""
    from tiny_compression import compression_studio, tiny_amused_in

    base = tmp_path_factory.getbasetemp()
    studio, undo = compression_studio(tiny_amused_in(base), base / "zss-cache")
    try:
        studio.engine("compression")
        parts = studio.manager.load("compression")
        codec = parts.get("codec")
        assert weight_bytes(parts) == tensor_bytes(codec.parts.vqvae, codec.parts.transformer)
        assert studio.status()["loaded"]["compression"]["weights_mb"] > 0
    finally:
        undo()


def test_the_speech_engine_reports_knn_vc_weights(local_model):
    """The real engine holds a KnnVC object (WavLM and the vocoder as attributes)."""
    from tiny_speech import tiny_speech_models

    from engines.speech import SpeechEngine

    for component, path in tiny_speech_models().items():
        local_model("speech", component, path)
    engine = SpeechEngine(ModelManager(Registry.load(), CPU))
    with engine.manager.use("speech") as parts:
        knn_vc = parts.get("knn_vc")
        speaker = parts.get("speaker")["model"]
    expected = tensor_bytes(knn_vc.wavlm, knn_vc.vocoder, speaker)
    assert weight_bytes(parts) == expected
    assert tensor_bytes(knn_vc.wavlm, knn_vc.vocoder) > 0
