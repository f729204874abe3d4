"""One registration per capability: its `Capability` names the engine, tab, commands and
evaluation protocol, and one key ties them to models.toml and serve.yaml."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

from engines.capabilities import CAPABILITIES, keys, offered, select
from engines.errors import InputError
from engines.registry import Registry

ROOT = Path(__file__).resolve().parents[1]


def test_one_key_names_the_engine_its_models_and_its_serve_application():
    engine_names = [cap.load_engine_class().name for cap in CAPABILITIES]
    assert engine_names == keys()
    assert set(Registry.load().engines()) == set(keys())
    applications = yaml.safe_load((ROOT / "serve.yaml").read_text())["applications"]
    assert sorted(app["args"]["engine"] for app in applications) == sorted(keys())
    assert all(app["name"] == app["args"]["engine"] for app in applications)


@pytest.mark.parametrize("capability", CAPABILITIES, ids=lambda c: c.key)
def test_each_capability_names_modules_that_do_their_jobs(capability):
    assert callable(importlib.import_module(capability.tab_module).build)
    assert callable(importlib.import_module(capability.cli_module).add_commands)
    if capability.eval_protocol:
        protocol = importlib.import_module(capability.eval_protocol)
        for name in ("add_arguments", "plan", "evaluator", "summarise"):
            assert callable(getattr(protocol, name)), f"{capability.eval_protocol}.{name}"
    assert capability.gpu_seconds > 0
    assert (capability.long_run_gpu_seconds or capability.gpu_seconds) >= capability.gpu_seconds


def test_long_runs_are_granted_more_gpu_time_than_one_call():
    assert offered("gan").long_run_gpu_seconds > offered("gan").gpu_seconds
    assert offered("nerf").long_run_gpu_seconds > offered("nerf").gpu_seconds


def test_lookups_name_what_there_is():
    assert [cap.key for cap in select(None)] == keys() == [cap.key for cap in CAPABILITIES]
    assert [cap.key for cap in select(["nerf", "layout"])] == ["nerf", "layout"]
    with pytest.raises(InputError, match="Unknown capability teleport; choose from layout"):
        select(["teleport"])
    with pytest.raises(InputError, match="No engine 'teleport'; available: layout, video"):
        offered("teleport")
