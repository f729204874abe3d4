"""`zsstudio`: registry listing, downloads, recipes."""

from __future__ import annotations

import json

import pytest

from engines.base import Recipe
from engines.cli import main


def test_models_lists_every_component_with_override(capsys):
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    keys = {row["component"] for row in rows}
    assert "layout.sd15" in keys
    sd15 = next(row for row in rows if row["component"] == "layout.sd15")
    assert sd15["override"] == "ZSS_MODEL_LAYOUT_SD15"
    assert sd15["downloaded"] in ("yes", "no")


def test_download_unknown_capability_exits_2(capsys):
    assert main(["download", "teleport"]) == 2
    assert "Unknown capability 'teleport'" in capsys.readouterr().err


def test_download_offline_fails_cleanly(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    assert main(["download", "layout"]) == 1
    assert "FAILED" in capsys.readouterr().err


def test_run_missing_recipe_exits_2(capsys, tmp_path):
    assert main(["run", str(tmp_path / "none.json")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_run_recipe_for_unknown_engine_exits_2(capsys, tmp_path):
    path = Recipe(engine="teleport", params={}).save(tmp_path / "r.json")
    assert main(["--device", "cpu", "run", str(path)]) == 2
    assert "No engine 'teleport'" in capsys.readouterr().err


def test_recipe_round_trip(tmp_path):
    recipe = Recipe(engine="layout", params={"prompt": "a cat", "steps": 2}, seed=3)
    loaded = Recipe.load(recipe.save(tmp_path / "r.json"))
    assert loaded == recipe
    with pytest.raises(Exception, match="at least `engine` and `params`"):
        Recipe.from_dict({"params": {}})


def test_multi_task_engines_dispatch_recipes_by_task():
    from dataclasses import dataclass
    from typing import ClassVar

    from engines.base import Engine, Request, Result
    from engines.errors import InputError
    from engines.manager import ModelManager
    from engines.registry import Registry

    @dataclass
    class Shout(Request):
        task: ClassVar[str] = "shout"
        text: str = ""

    @dataclass
    class Whisper(Request):
        task: ClassVar[str] = "whisper"
        text: str = ""
        softly: bool = True

    class Echo(Engine):
        name = "echo"
        tasks = {Shout: "shout", Whisper: "whisper"}

        def load(self, context):
            return {}

        def shout(self, request, progress):
            return Result(recipe=self.recipe(request, {}, None))

        whisper = shout

    engine = Echo(ModelManager(Registry.load(), "cpu"))
    ran = engine.run_recipe(Recipe(engine="echo", params={"task": "whisper", "text": "hi"}))
    assert ran.recipe.params == {"task": "whisper", "text": "hi", "softly": True}
    with pytest.raises(InputError, match="names its task in params; known: shout, whisper"):
        engine.run_recipe(Recipe(engine="echo", params={"text": "hi"}))
    with pytest.raises(InputError, match="Unknown echo task 'sing'; known: shout, whisper"):
        engine.run_recipe(Recipe(engine="echo", params={"task": "sing"}))
    with pytest.raises(InputError, match="takes Shout, Whisper, not Request"):
        engine.run(Request())
    with pytest.raises(InputError, match="params must be a JSON object"):
        engine.run_recipe(Recipe(engine="echo", params="abc"))
    with pytest.raises(InputError, match="This recipe is for 'layout'"):
        engine.run_recipe(Recipe(engine="layout", params={}))


def test_an_unwritable_output_is_refused_before_anything_runs(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code = main(["layout", "--prompt", "a cat", "-o", str(blocker / "out")])
    assert code == 2
    assert f"Cannot write to the folder {blocker / 'out'}" in capsys.readouterr().err
