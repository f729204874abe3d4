"""The model manager: lazy loading, one resident engine, thread safety, OOM handling."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from engines.device import DeviceSpec, choose_device
from engines.errors import InputError, OutOfMemory
from engines.hashing import tree_sha256
from engines.manager import ModelManager
from engines.registry import Registry
from engines.residency import ONE_ENGINE, UNLIMITED

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
    manager, _ = make_manager(budget_bytes=UNLIMITED)
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
        parts = context.lazy({"backbone": lambda context: context.resolve("sd15")})
        parts.get("backbone")
        return parts

    manager.register("layout", load)
    parts = manager.load("layout")
    assert seen["device"] == CPU
    assert parts.sources("backbone") == {
        "sd15": {"source": "local", "revision": "local:sha256:" + tree_sha256(tmp_path)}
    }


def test_device_choice_on_this_machine():
    assert choose_device("cpu") == CPU
    assert choose_device("auto").device in ("cpu", "cuda:0", "mps")
    with pytest.raises(InputError, match="Unknown device"):
        choose_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA device"):
            choose_device("cuda")


# -- engines resident together within a memory budget -------------------------------------

LINEAR_BYTES = {1000: 1001 * 4, 2000: 2001 * 4}  # nn.Linear(size, 1) weights + bias, fp32


def budget_manager(budget: int) -> tuple[ModelManager, list]:
    calls: list = []
    manager = ModelManager(Registry.load(), CPU, budget_bytes=budget)
    for name, size in (("a", 1000), ("b", 2000), ("c", 1000)):
        manager.register(name, counting_loader(calls, size=size))
    return manager, calls


def resident(manager: ModelManager) -> list[str]:
    return sorted(name for name in "abc" if manager.is_loaded(name))


def test_engines_stay_resident_while_they_fit_the_budget():
    manager, calls = budget_manager(LINEAR_BYTES[1000] + LINEAR_BYTES[2000])
    manager.load("a")
    manager.load("b")
    assert resident(manager) == ["a", "b"]
    with manager.use("a"):  # no reload: both fit
        pass
    assert calls == ["a", "b"]
    assert "weight memory" in manager.status()["residency"]


def test_the_least_recently_used_engine_makes_room():
    manager, calls = budget_manager(LINEAR_BYTES[1000] + LINEAR_BYTES[2000])
    manager.load("a")
    manager.load("b")
    manager.load("a")  # b is now the least recently used
    manager.load("c")  # a + b + c do not fit: b goes
    assert resident(manager) == ["a", "c"]
    manager.load("b")  # b's size is known from before: room is made before it loads
    assert manager.is_loaded("b") and len(resident(manager)) == 2
    assert calls == ["a", "b", "c", "b"]


def test_an_engine_larger_than_the_budget_still_loads_alone():
    manager, _ = budget_manager(100)
    manager.load("a")
    manager.load("b")
    assert resident(manager) == ["b"]


def test_concurrent_use_never_holds_more_than_the_budget():
    budget = LINEAR_BYTES[1000] + LINEAR_BYTES[2000]
    manager, _ = budget_manager(budget)
    over: list[int] = []

    def work(names):
        for name in names:
            with manager.use(name) as models:
                held = sum(manager._weights.get(n, 0) for n in "abc" if manager.is_loaded(n))
                if held > budget:
                    over.append(held)
                assert isinstance(models["net"], torch.nn.Linear)

    threads = [threading.Thread(target=work, args=(order,)) for order in ("abcab", "cbaca", "bbac")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert over == []


def test_out_of_memory_while_loading_releases_the_others_and_retries_once():
    manager, calls = budget_manager(10**9)
    attempts = []

    def hungry(context):
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return {"net": torch.nn.Linear(10, 1)}

    manager.register("big", hungry)
    manager.load("a")
    manager.load("big")
    assert len(attempts) == 2 and not manager.is_loaded("a") and manager.is_loaded("big")


def test_out_of_memory_in_a_run_releases_the_others_and_the_engine_runs_again():
    from dataclasses import dataclass
    from typing import ClassVar

    from engines.base import Engine, Recipe, Request, Result

    @dataclass
    class Ask(Request):
        task: ClassVar[str] = "ask"

    runs = []

    class Hungry(Engine):
        name = "hungry"
        tasks = {Ask: "ask"}

        def load(self, context):
            return {"net": torch.nn.Linear(10, 1)}

        def ask(self, request, progress):
            with self.manager.use(self.name):
                runs.append(1)
                if len(runs) == 1:
                    raise RuntimeError("CUDA out of memory")
            return Result(recipe=Recipe(engine=self.name, params={}))

    manager, _ = budget_manager(10**9)
    engine = Hungry(manager)
    manager.load("a")
    engine.run(Ask())
    assert len(runs) == 2 and not manager.is_loaded("a")
    runs.clear()
    with pytest.raises(OutOfMemory, match="its models were released"):
        engine.run(Ask())  # alone on the device: nothing to release, so it reports
    assert len(runs) == 1


def test_the_gpu_budget_flag(monkeypatch):
    from engines.studio import Studio

    assert Studio(device="cpu", gpu_budget_gb=2).manager.budget_bytes == 2 * 2**30
    assert Studio(device="cpu").manager.budget_bytes == ONE_ENGINE
    with pytest.raises(InputError, match="positive number of GB"):
        Studio(device="cpu", gpu_budget_gb=0)


def test_a_cpu_budget_is_one_engine_even_of_engines_holding_no_weights():
    manager = ModelManager(Registry.load(), CPU)
    for name in ("a", "b"):
        manager.register(name, lambda context: {})
    manager.load("a")
    manager.load("b")
    assert not manager.is_loaded("a") and manager.is_loaded("b")
    assert manager.status()["residency"] == "one engine at a time"


def test_parts_loaded_during_a_run_count_toward_the_budget():
    manager, _ = budget_manager(LINEAR_BYTES[1000] + LINEAR_BYTES[2000])
    manager.register(
        "lazy", lambda context: context.lazy({"net": lambda c: torch.nn.Linear(2000, 1)})
    )
    manager.load("a")
    with manager.use("lazy") as parts:  # loaded holding nothing; its part loads in the run
        parts.get("net")
    assert resident(manager) == ["a"] and manager.is_loaded("lazy")
    manager.load("c")  # a + lazy's part + c do not fit: a, the least recently used, goes
    assert resident(manager) == ["c"] and manager.is_loaded("lazy")
