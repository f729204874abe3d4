"""docs/engines.md "Adding an engine, step by step", followed for a toy seventh engine: "gloss"
replaces each word of a text by its gloss from a word list (its model, a registry component).
Registered as one more Capability, it is a tab in the app, commands on `zsstudio`, a recipe that
runs again, and an engine the studio loads and releases by its key."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engines import capabilities
from engines.base import Engine, Progress, Request, Result, no_progress
from engines.capabilities import Capability, offered
from engines.cli import main
from engines.commands import add_request_arguments, request_from_args, run_and_save
from engines.errors import ModelUnavailable
from engines.fields import integer, text
from engines.parts import LoadContext, Parts
from engines.studio import Studio

# -- 1. models: a table in models.toml (the test's own, beside the shipped one) ---------------
MODELS_TOML = """\
[gloss.lexicon]
repo = "example/gloss-lexicon"
revision = "main"
license = "CC0-1.0"
description = "word -> gloss list (JSON)"
"""
LEXICON = {"cat": "chat", "black": "noir", "the": "le"}


# -- 2. request and result ---------------------------------------------------------------------
@dataclass
class GlossRequest(Request):
    text: str = text("", "the text to gloss", empty="Type a text to gloss.")
    repeat: int = integer(1, 1, 3, "times the gloss is repeated")


@dataclass
class GlossResult(Result):
    gloss: str = ""

    def files(self) -> dict[str, bytes]:
        return {"gloss.txt": self.gloss.encode("utf-8")}


# -- 3. the engine -----------------------------------------------------------------------------
def load_lexicon(context: LoadContext) -> dict[str, str]:
    folder = context.resolve("lexicon").folder
    return json.loads((folder / "lexicon.json").read_text(encoding="utf-8"))


class GlossEngine(Engine):
    name = "gloss"
    tasks = {GlossRequest: "gloss"}

    def load(self, context: LoadContext) -> Parts:
        return context.lazy({"lexicon": load_lexicon})

    def gloss(self, request: GlossRequest, progress: Progress = no_progress) -> GlossResult:
        with self.manager.use(self.name) as parts:  # run() has validated the request
            progress(0.0, "Glossing")
            lexicon = parts.get("lexicon")
            words = request.text.split()
            glossed = [lexicon.get(word.lower(), word) for word in words]
            sources = parts.sources("lexicon")
        known = sum(word.lower() in lexicon for word in words)
        return GlossResult(
            recipe=self.recipe(request, sources, seed=None),
            metrics={"words": len(words), "glossed": known},
            gloss=" / ".join([" ".join(glossed)] * request.repeat),
        )


# -- 4. its commands ---------------------------------------------------------------------------
def add_commands(commands, make_studio) -> None:
    gloss = commands.add_parser("gloss", help="gloss a text word by word")
    add_request_arguments(gloss, GlossRequest)
    gloss.add_argument("-o", "--output", type=Path, default=Path("gloss"), help="output folder")
    gloss.set_defaults(handler=lambda args: _run(args, make_studio))


def _run(args: argparse.Namespace, make_studio) -> int:
    return run_and_save(make_studio, args, "gloss", request_from_args(GlossRequest, args))


# -- 5. its tab --------------------------------------------------------------------------------
def build(studio) -> None:
    import gradio as gr

    from tabs.forms import Call, Form, connect

    form = Form(GlossRequest)
    form("text")
    form("repeat")
    outputs = {"gloss": gr.Textbox(label="Gloss")}
    button = gr.Button("Gloss")

    def gloss(values: dict[str, Any], call: Call) -> dict[str, Any]:
        """Gloss a text word by word."""
        result = studio.engine("gloss").run(GlossRequest(**values), call.progress)
        return {"gloss": result.gloss}

    connect(
        button.click,
        gloss,
        form.inputs,
        outputs,
        api_name="gloss",
        gpu_duration=offered("gloss").gpu_seconds,
    )


# -- 6. one Capability -------------------------------------------------------------------------
GLOSS = Capability(
    key="gloss",
    title="Gloss",
    engine_class=f"{__name__}:GlossEngine",
    tab_module=__name__,
    cli_module=__name__,
    eval_protocol=None,
    gpu_seconds=30,
    long_run_gpu_seconds=None,
    paper="A toy for the docs",
    paper_url="https://example.org/gloss",
    papers_part="Word-by-word glosses.",
    ours="All of it.",
)


@pytest.fixture
def registered(monkeypatch, tmp_path):
    """The gloss capability registered beside the six, its word list on this machine, and a
    models.toml naming it; returns that file."""
    monkeypatch.setattr(capabilities, "CAPABILITIES", (*capabilities.CAPABILITIES, GLOSS))
    lexicon = tmp_path / "lexicon"
    lexicon.mkdir()
    (lexicon / "lexicon.json").write_text(json.dumps(LEXICON), encoding="utf-8")
    monkeypatch.setenv("ZSS_MODEL_GLOSS_LEXICON", str(lexicon))
    models = tmp_path / "models.toml"
    models.write_text(MODELS_TOML, encoding="utf-8")
    return models


def test_the_studio_runs_the_new_engine_by_its_key_and_releases_it(registered):
    studio = Studio(device="cpu", models=registered)
    result = studio.engine("gloss").run(GlossRequest(text="the black cat sat", repeat=2))
    assert result.gloss == "le noir chat sat / le noir chat sat"
    assert result.metrics == {"words": 4, "glossed": 3}
    assert result.recipe.engine == "gloss"
    assert result.recipe.models["lexicon"]["revision"].startswith("local:")
    assert list(studio.status()["loaded"]) == ["gloss"]
    assert studio.release("gloss")["loaded"] == {}


def test_a_missing_model_names_the_variable_and_the_download(registered, monkeypatch):
    monkeypatch.delenv("ZSS_MODEL_GLOSS_LEXICON")
    studio = Studio(device="cpu", models=registered)
    with pytest.raises(ModelUnavailable) as caught:
        studio.engine("gloss").run(GlossRequest(text="the cat"))
    message = str(caught.value)
    assert "gloss.lexicon" in message
    assert "ZSS_MODEL_GLOSS_LEXICON" in message and "zsstudio download gloss" in message


def test_the_cli_has_its_commands_and_reruns_its_recipe(registered, tmp_path, capsys):
    first, again = tmp_path / "first", tmp_path / "again"
    models = ["--device", "cpu", "--models", str(registered)]
    assert main([*models, "gloss", "--text", "the cat", "--repeat", "3", "-o", str(first)]) == 0
    assert (first / "gloss.txt").read_text() == "le chat / le chat / le chat"
    assert json.loads((first / "metrics.json").read_text()) == {"words": 2, "glossed": 2}
    assert main([*models, "run", str(first / "recipe.json"), "-o", str(again)]) == 0
    assert (again / "gloss.txt").read_bytes() == (first / "gloss.txt").read_bytes()
    capsys.readouterr()
    assert main([*models, "gloss", "--text", "", "-o", str(tmp_path / "no")]) == 2
    assert "Type a text to gloss." in capsys.readouterr().err
    assert main([*models, "gloss", "--text", "x", "--repeat", "4", "-o", str(tmp_path)]) == 2
    with pytest.raises(SystemExit):  # no evaluation protocol: not one of eval's choices
        main([*models, "eval", "gloss"])


def test_the_app_has_its_tab_and_endpoint(registered):
    from app import build_demo

    demo = build_demo(tabs=["gloss"], studio=Studio(device="cpu", models=registered))
    config = demo.get_config_file()
    tabs = {
        c["props"]["id"]: c["props"]["label"]
        for c in config["components"]
        if c["type"] == "tabitem" and c["props"].get("id")
    }
    assert tabs == {"gloss": "Gloss", "about": "About"}
    assert "gloss" in {dep.get("api_name") for dep in config["dependencies"]}
    (release,) = [b for b in demo.blocks.values() if getattr(b, "label", "") == "Engine to release"]
    assert [value for _, value in release.choices][-1] == "gloss"
