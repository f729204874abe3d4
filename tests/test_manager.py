"""The model manager: lazy loading, one resident engine, thread safety, OOM handling."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from engines.device import DeviceSpec, choose_device
from engines.errors import InputError, OutOfMemory
from engines.manager import ModelManager
from engines.registry import Registry

CPU = DeviceSpec("cpu", "float32")


def counting_loader(calls: list, size: int = 1000):
    def load(context):
        calls.append(context.engine)
        time.sleep(0.05)  # widen the window a racing second load would need
        return {"net": torch.nn.Linear(size, 1), "tokenizer": object()}

    return load


def make_manager(**kwargs) -> tuple[ModelManager, list]:
    calls: list = []
    manager = ModelManager(Registry.load(), CPU, **kwargs)
    manager.register("a", counting_loader(calls))
    manager.register("b", counting_loader(calls, size=2000))
    return manager, calls


def test_nothing_loads_until_first_use():
    manager, calls = make_manager()
    assert calls == []
    assert manager.status()["loaded"] == {}
    with manager.use("a") as models:
        assert isinstance(models["net"], torch.nn.Linear)
    with manager.use("a"):
        pass
    assert calls == ["a"]


def test_one_engine_resident_at_a_time():
    manager, calls = make_manager()
    with manager.use("a"):
        pass
    with manager.use("b"):
        pass
    assert calls == ["a", "b"]
    assert not manager.is_loaded("a") and manager.is_loaded("b")


def test_no_limit_keeps_all_engines():
    manager, _ = make_manager(max_resident=None)
    manager.load("a")
    manager.load("b")
    assert manager.is_loaded("a") and manager.is_loaded("b")


def test_status_reports_weights_memory():
    manager, _ = make_manager()
    manager.load("b")
    status = manager.status()
    expected_mb = (2000 + 1) * 4 / 2**20
    assert status["device"] == "cpu (float32)"
    assert status["loaded"]["b"]["weights_mb"] == pytest.approx(expected_mb, abs=0.05)
    assert status["loaded"]["b"]["components"] == ["net", "tokenizer"]


def test_concurrent_first_uses_load_once():
    manager, calls = make_manager()
    threads = [threading.Thread(target=manager.load, args=("a",)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == ["a"]


def test_release_frees_and_unknown_release_is_an_input_error():
    manager, _ = make_manager()
    manager.load("a")
    assert manager.release("a") == ["a"]
    assert not manager.is_loaded("a")
    with pytest.raises(InputError, match="not loaded"):
        manager.release("a")
    with pytest.raises(InputError, match="Unknown engine"):
        manager.load("zzz")


def test_out_of_memory_releases_the_engine_and_says_so():
    manager, _ = make_manager()
    with pytest.raises(OutOfMemory, match="ran out of memory"), manager.use("a"):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
    assert not manager.is_loaded("a")


def test_other_errors_keep_the_engine_loaded():
    manager, _ = make_manager()
    with pytest.raises(ValueError), manager.use("a"):
        raise ValueError("bad")
    assert manager.is_loaded("a")


def test_loader_receives_device_and_records_sources(tmp_path, local_model):
    local_model("layout", "sd15", tmp_path)
    manager = ModelManager(Registry.load(), CPU)
    seen = {}

    def load(context):
        seen["device"] = context.device
        context.resolve("sd15")
        return {}

    manager.register("layout", load)
    models = manager.load("layout")
    assert seen["device"] == CPU
    assert models.sources == {
        "sd15": {
            "source": "stable-diffusion-v1-5/stable-diffusion-v1-5",
            "revision": f"local:{tmp_path}",
        }
    }


def test_device_choice_on_this_machine():
    assert choose_device("cpu") == CPU
    assert choose_device("auto").device in ("cpu", "cuda:0", "mps")
    with pytest.raises(InputError, match="Unknown device"):
        choose_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA device"):
            choose_device("cuda")
