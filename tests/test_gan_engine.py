"""GanAdaptEngine through the registry with tiny models saved in the real formats: results,
cancel, save/load, sampling, every bad input, recipes and the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from tiny_gan import one_thread, save_tiny_generator, save_tiny_open_clip  # noqa: F401

from engines.base import Recipe
from engines.cli import main as cli_main
from engines.errors import InputError, ModelUnavailable
from engines.gan import AdaptRequest, GanAdaptEngine, SampleRequest
from engines.gan.checkpoint import load_generator
from engines.manager import ModelManager
from engines.registry import Registry

FAST = dict(
    source="photo",
    target="pencil sketch",
    iterations=4,
    batch=3,
    preview_every=2,
    stage1_iterations=20,
    eval_samples=8,
    grid_size=3,
)


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-gan")
    return {
        "generator": save_tiny_generator(folder / "cat.pt", size=32),
        "clip": save_tiny_open_clip(folder / "clip"),
    }


@pytest.fixture
def engine(tiny_files, local_model):
    local_model("gan", "cat256", tiny_files["generator"])
    local_model("gan", "clip", tiny_files["clip"])
    local_model("gan", "clip_b16", tiny_files["clip"])
    return GanAdaptEngine(ModelManager(Registry.load(), "cpu"))


def test_adapt_returns_grid_curves_metrics_and_a_loadable_generator(engine, tmp_path):
    steps = []
    result = engine.run(AdaptRequest(**FAST), lambda fraction, text: steps.append(fraction))
    assert result.iterations_done == 4 and not result.cancelled
    assert [row["iteration"] for row in result.history] == [1, 2, 3, 4]
    assert steps[-1] == 1.0
    # 3 seeds x 32 px, two rows (before, after), 4 px gaps
    assert result.before_after.size == (3 * 32 + 2 * 4, 2 * 32 + 4)
    for key in (
        "clip_target_score_before",
        "clip_target_score_after",
        "diversity_clip_before",
        "diversity_clip_after",
        "clip_direction_alignment",
        "iterations_per_second",
        "variation_target_cos",
    ):
        assert isinstance(result.metrics[key], float), key
    assert result.metrics["diversity_clip_after"] > 0
    assert {"cat256", "clip"} <= set(result.recipe.models)
    assert result.recipe.params["target"] == "pencil sketch"
    rows = result.loss_rows()
    assert {row["loss"] for row in rows} >= {"total", "EWC x lambda_ewc"}

    written = result.save(tmp_path / "out")
    names = {path.name for path in written}
    assert {"adapted.pt", "before_after.png", "losses.csv", "metrics.json", "recipe.json"} <= names
    generator, latent_avg = load_generator(tmp_path / "out" / "adapted.pt")
    assert latent_avg is not None
    assert torch.equal(
        generator.state_dict()["convs.0.conv.weight"], result.generator_state["convs.0.conv.weight"]
    )


def test_nada_with_two_clip_models_and_layer_selection(engine):
    result = engine.run(
        AdaptRequest(**{**FAST, "method": "nada", "layer_k": 2, "second_clip": True})
    )
    assert set(result.history[0]) == {"iteration", "directional", "total"}
    assert result.metrics["layers_trained_per_step"] == 2
    assert {"clip", "clip_b16"} <= set(result.recipe.models)


def test_cancel_keeps_a_valid_generator(engine, tmp_path):
    run = engine.start(AdaptRequest(**{**FAST, "iterations": 400, "preview_every": 1}))
    for update in run:
        if update.stage == "adapt" and update.iteration >= 2:
            assert engine.cancel(run.id)
    result = run.result()
    assert result.cancelled
    assert 2 <= result.iterations_done < 400
    assert not engine.cancel(run.id)  # finished runs are forgotten
    path = result.save_generator(tmp_path / "partial.pt")
    generator, _ = load_generator(path)
    images = generator(generator.mapping(torch.randn(2, 32)))
    assert torch.isfinite(images).all()


def test_closing_the_update_stream_cancels(engine):
    run = engine.start(AdaptRequest(**{**FAST, "iterations": 400, "preview_every": 1}))
    for update in run:
        if update.stage == "adapt" and update.iteration >= 1:
            break
    result = run.result(timeout=120)
    assert result.cancelled and result.iterations_done < 400


def test_sample_more_from_an_adapted_file(engine, tmp_path):
    result = engine.run(AdaptRequest(**FAST))
    path = result.save_generator(tmp_path / "adapted.pt")
    samples = engine.sample(SampleRequest(checkpoint=str(path), count=5, target="pencil sketch"))
    assert len(samples.images) == 5 and samples.images[0].size == (32, 32)
    assert samples.metrics["samples"] == 5 and samples.metrics["resolution"] == 32
    assert isinstance(samples.metrics["clip_target_score"], float)
    again = engine.run_recipe(Recipe.from_dict(json.loads(samples.recipe.to_json())))
    assert [a.tobytes() for a in again.images] == [b.tobytes() for b in samples.images]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"target": ""}, "target text"),
        ({"source": "  "}, "source text"),
        ({"target": "Photo."}, "same"),
        ({"iterations": 0}, "iterations"),
        ({"iterations": 10_000}, "iterations"),
        ({"method": "gan-magic"}, "Unknown method"),
        ({"batch": 2}, "batch of at least 3"),
        ({"truncation": 1.5}, "truncation"),
        ({"lr": float("nan")}, "learning rate"),
        ({"model": "dragons512"}, "Unknown generator"),
    ],
)
def test_bad_adapt_requests_are_input_errors(engine, change, message):
    with pytest.raises(InputError, match=message):
        engine.start(AdaptRequest(**{**FAST, **change}))
    assert not engine.manager.is_loaded("gan")  # rejected before loading anything


def test_layer_k_beyond_the_generator_is_an_input_error(engine):
    run = engine.start(AdaptRequest(**{**FAST, "method": "nada", "layer_k": 40}))
    with pytest.raises(InputError, match="selectable layers"):
        run.result()


def test_bad_uploads_are_refused(engine, tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("not weights")
    with pytest.raises(InputError, match="not a readable PyTorch checkpoint"):
        engine.sample(SampleRequest(checkpoint=str(text)))
    state_only = tmp_path / "state.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, state_only)
    with pytest.raises(InputError, match="g_ema"):
        engine.sample(SampleRequest(checkpoint=str(state_only)))
    with pytest.raises(InputError, match="Choose an adapted generator"):
        engine.sample(SampleRequest(checkpoint=""))
    with pytest.raises(InputError, match="count"):
        engine.sample(SampleRequest(checkpoint=str(text), count=0))


def test_missing_weights_name_the_fix(tiny_files, local_model, tmp_path):
    local_model("gan", "cat256", tiny_files["generator"])
    local_model("gan", "clip", tmp_path / "not-downloaded")
    engine = GanAdaptEngine(ModelManager(Registry.load(), "cpu"))
    with pytest.raises(ModelUnavailable, match="ZSS_MODEL_GAN_CLIP"):
        engine.start(AdaptRequest(**FAST)).result()


def test_cli_adapt_then_sample(tiny_files, local_model, tmp_path, capsys):
    local_model("gan", "cat256", tiny_files["generator"])
    local_model("gan", "clip", tiny_files["clip"])
    out = tmp_path / "run" / "sketch.pt"
    code = cli_main(
        [
            "--device", "cpu", "gan-adapt", "--model", "cat256", "--source", "photo of a cat",
            "--target", "a cat in Van Gogh style", "--iterations", "2", "--stage1-iterations",
            "10", "--eval-samples", "4", "-o", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    for name in ("sketch.pt", "sketch.png", "sketch-losses.csv", "sketch-metrics.json"):
        assert (tmp_path / "run" / name).is_file(), name
    recipe = json.loads((tmp_path / "run" / "sketch-recipe.json").read_text())
    assert recipe["params"]["batch"] == 4  # SVL's default
    code = cli_main(
        ["--device", "cpu", "gan-sample", str(out), "-n", "3", "-o", str(tmp_path / "s")]
    )
    assert code == 0
    assert len(list((tmp_path / "s").glob("sample_*.png"))) == 3
    assert cli_main(["--device", "cpu", "gan-sample", str(tmp_path / "missing.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err
