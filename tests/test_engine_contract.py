"""What every engine shares through `Engine.run`: the request is validated before the task runs
and before any model loads."""

from __future__ import annotations

import copy

import pytest

from engines.capabilities import CAPABILITIES
from engines.device import DeviceSpec
from engines.errors import InputError
from engines.fields import FLOAT, INT, declared_fields, field_default
from engines.manager import ModelManager
from engines.registry import Registry

CPU = DeviceSpec("cpu", "float32")


def invalid_request(request_type):
    """The request with its declared defaults and its first bounded number one below its
    range (or, without one, the defaults alone: then a required input is missing)."""
    values = {f.name: field_default(f) for f, _ in declared_fields(request_type)}
    for declared, spec in declared_fields(request_type):
        if spec.kind in (INT, FLOAT) and spec.low is not None:
            values[declared.name] = spec.low - 1
            break
    return request_type(**values)


TASKS = [
    (capability.key, request_type)
    for capability in CAPABILITIES
    for request_type in capability.load_engine_class().tasks
]


def test_every_engine_declares_its_tasks():
    assert {key for key, _ in TASKS} == {cap.key for cap in CAPABILITIES}
    assert len(TASKS) >= 12


@pytest.mark.parametrize(("key", "request_type"), TASKS, ids=lambda x: getattr(x, "__name__", x))
def test_run_refuses_an_invalid_request_before_the_task_or_any_load(key, request_type):
    engine_class = next(c for c in CAPABILITIES if c.key == key).load_engine_class()
    manager = ModelManager(Registry.load(), CPU)
    engine = engine_class(manager)
    loads: list[str] = []
    manager.register(engine.name, lambda context: loads.append(context.engine))
    started: list[str] = []
    method = engine.tasks[request_type]
    setattr(engine, method, lambda request, progress: started.append(method))

    request = invalid_request(request_type)
    with pytest.raises(InputError) as expected:
        copy.deepcopy(request).validate()
    with pytest.raises(InputError) as refused:
        engine.run(request)
    assert str(refused.value) == str(expected.value)
    assert started == [] and loads == [] and not manager.is_loaded(engine.name)


def test_a_request_of_another_engine_is_refused_by_name():
    engines = {
        cap.key: cap.load_engine_class()(ModelManager(Registry.load(), CPU)) for cap in CAPABILITIES
    }
    layout_request = next(t for key, t in TASKS if key == "layout")
    with pytest.raises(InputError, match=f"takes .* not {layout_request.__name__}"):
        engines["speech"].run(invalid_request(layout_request))


def test_the_studios_and_their_engines_share_one_interface(monkeypatch):
    from ray import serve

    from engines.gan import GanAdaptEngine
    from engines.interface import EngineInterface, LongRunInterface, StudioInterface
    from engines.layout import LayoutEngine
    from engines.serving.client import RayStudio, RemoteEngine
    from engines.studio import Studio

    studio, ray_studio = Studio(device="cpu"), RayStudio()
    assert isinstance(studio, StudioInterface) and isinstance(ray_studio, StudioInterface)
    for cap in CAPABILITIES:
        assert isinstance(studio.engine(cap.key), EngineInterface)
    assert isinstance(GanAdaptEngine(studio.manager), LongRunInterface)
    assert not isinstance(LayoutEngine(studio.manager), LongRunInterface)
    monkeypatch.setattr(serve, "get_deployment_handle", lambda *args, **kwargs: object())
    remote = RemoteEngine("gan", GanAdaptEngine, ray_studio)
    assert isinstance(remote, LongRunInterface)
    assert remote.tasks == GanAdaptEngine.tasks and remote.request_types() == list(remote.tasks)
