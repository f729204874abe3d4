"""GanAdaptEngine through the registry with tiny models saved in the real formats: results,
cancel, save/load, sampling, every bad input, recipes and the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from tiny_gan import save_tiny_generator, save_tiny_open_clip

from engines.base import Recipe
from engines.cli import main as cli_main
from engines.errors import InputError, ModelUnavailable
from engines.gan import AdaptRequest, GanAdaptEngine, SampleRequest
from engines.gan.checkpoint import load_generator
from engines.gan.history import LOSS_LABELS
from engines.manager import ModelManager
from engines.memory import weight_bytes
from engines.registry import Registry

pytestmark = pytest.mark.usefixtures("one_thread")

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
    assert {"total", "ewc"} <= set(result.history[-1]) <= {"iteration", *LOSS_LABELS}

    written = result.save(tmp_path / "out")
    names = {path.name for path in written}
    assert names == {"adapted.pt", "before_after.png", "losses.csv", "metrics.json", "recipe.json"}
    assert json.loads((tmp_path / "out" / "metrics.json").read_text()) == json.loads(
        json.dumps(result.metrics)
    )
    assert json.loads((tmp_path / "out" / "recipe.json").read_text())["params"]["task"] == "adapt"
    losses = (tmp_path / "out" / "losses.csv").read_text().splitlines()
    assert losses[0].startswith("iteration,") and len(losses) == 1 + 4
    generator, latent_avg = load_generator(tmp_path / "out" / "adapted.pt")
    assert latent_avg is not None
    assert torch.equal(
        generator.state_dict()["convs.0.conv.weight"], result.generator_state["convs.0.conv.weight"]
    )


def test_clip_loads_with_the_engine_generators_when_picked_and_weights_are_counted(engine):
    parts = engine.manager.load("gan")
    assert parts.is_loaded("clip") and not parts.is_loaded("cat256")
    clip_bytes = sum(p.numel() * p.element_size() for p in parts.get("clip").model.parameters())
    assert weight_bytes(parts) >= clip_bytes > 0
    generator = parts.get("cat256").generator
    generator_bytes = sum(p.numel() * p.element_size() for p in generator.parameters())
    assert weight_bytes(parts) >= clip_bytes + generator_bytes
    assert set(parts.sources("cat256")) == {"cat256"}


def test_nada_with_two_clip_models_and_layer_selection(engine):
    result = engine.run(
        AdaptRequest(**{**FAST, "method": "nada", "layer_k": 2, "second_clip": True})
    )
    assert set(result.history[0]) == {"iteration", "directional", "total"}
    assert result.metrics["layers_trained_per_step"] == 2
    assert {"clip", "clip_b16"} <= set(result.recipe.models)


def test_cancel_keeps_a_valid_generator(engine, tmp_path):
    run = engine.start(AdaptRequest(**{**FAST, "iterations": 400, "preview_every": 1}))
    first = None
    for update in run:
        first = first or update
        if update.stage == "adapt" and update.step >= 2:
            assert engine.cancel(run.id)
    assert (first.stage, first.message) == ("loading", "loading gan")  # a stage of its own
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
        if update.stage == "adapt" and update.step >= 1:
            break
    result = run.result(timeout=120)
    assert result.cancelled and result.iterations_done < 400


def test_sample_more_from_an_adapted_file(engine, tmp_path):
    result = engine.run(AdaptRequest(**FAST))
    path = result.save_generator(tmp_path / "adapted.pt")
    samples = engine.run(SampleRequest(checkpoint=str(path), count=5, target="pencil sketch"))
    assert len(samples.images) == 5 and samples.images[0].size == (32, 32)
    assert samples.metrics["samples"] == 5 and samples.metrics["resolution"] == 32
    assert isinstance(samples.metrics["clip_target_score"], float)
    assert samples.recipe.params["task"] == "sample"
    again = engine.run_recipe(Recipe.from_dict(json.loads(samples.recipe.to_json())))
    assert [a.tobytes() for a in again.images] == [b.tobytes() for b in samples.images]
    written = {path.name for path in samples.save(tmp_path / "samples")}
    assert written == {f"sample_{i:03d}.png" for i in range(5)} | {
        "samples.png",
        "metrics.json",
        "recipe.json",
        "checkpoint-adapted.pt",  # inputs/: the generator the recipe names
    }


def test_a_recipe_without_its_task_is_refused(engine):
    with pytest.raises(InputError, match="names its task in params; known: adapt, sample"):
        engine.request_from_recipe(Recipe(engine="gan", params={"checkpoint": "a.pt"}))


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
        ({"iterations": 10.5}, "iterations must be a whole number"),
        ({"iterations": "300"}, "iterations must be a whole number"),
        ({"batch": 0}, "batch is 0; it must be 1 to 32"),
        ({"lambda_ewc": -1.0}, "lambda_ewc"),
        ({"second_clip": "yes"}, "second CLIP must be true or false"),
        ({"model": "dragons512"}, "Unknown generator"),
    ],
)
def test_bad_adapt_requests_are_input_errors(engine, change, message):
    with pytest.raises(InputError, match=message):
        engine.start(AdaptRequest(**{**FAST, **change}))
    assert not engine.manager.is_loaded("gan")  # rejected before loading anything


@pytest.mark.parametrize(
    "change, message",
    [
        ({"count": "8"}, "samples must be a whole number"),
        ({"count": 2.5}, "samples must be a whole number"),
        ({"count": 65}, "samples is 65; it must be 1 to 64"),
        ({"truncation": float("nan")}, "truncation must be a finite number"),
        ({"seed": -1}, "seed is -1"),
    ],
)
def test_bad_sample_requests_are_refused_before_reading_the_file(engine, change, message):
    with pytest.raises(InputError, match=message):
        engine.run(SampleRequest(**{"checkpoint": "no-such.pt", **change}))


def test_requests_check_their_declared_fields():
    for change in ({"iterations": 10.5}, {"lr": float("nan")}, {"iterations": "10"}):
        with pytest.raises(InputError):
            AdaptRequest(**{**FAST, **change}).validate()
    with pytest.raises(InputError, match="samples must be a whole number"):
        SampleRequest(checkpoint="a.pt", count="8").validate()
    request = AdaptRequest(**{**FAST, "iterations": 10.0, "seed": 7.0})
    request.validate()
    assert request.iterations == 10 and isinstance(request.iterations, int)


def test_batch_defaults_to_the_methods():
    """One place for the methods' batches: empty means SVL 4, NADA 2; the recipe records it."""
    for method, batch in (("svl", 4), ("nada", 2)):
        request = AdaptRequest(**{**FAST, "batch": None, "method": method})
        request.validate()
        assert request.batch == batch
        assert request.to_params()["batch"] == batch
    request = AdaptRequest(source="  photo ", target=" sketch ")
    request.validate()
    assert (request.source, request.target, request.batch) == ("photo", "sketch", 4)


def test_layer_k_beyond_the_generator_is_an_input_error(engine):
    run = engine.start(AdaptRequest(**{**FAST, "method": "nada", "layer_k": 40}))
    with pytest.raises(InputError, match="selectable layers"):
        run.result()


def test_bad_uploads_are_refused(engine, tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("not weights")
    with pytest.raises(InputError, match="not a readable PyTorch checkpoint"):
        engine.run(SampleRequest(checkpoint=str(text)))
    state_only = tmp_path / "state.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, state_only)
    with pytest.raises(InputError, match="g_ema"):
        engine.run(SampleRequest(checkpoint=str(state_only)))
    with pytest.raises(InputError, match="Choose an adapted generator"):
        engine.run(SampleRequest(checkpoint=""))
    with pytest.raises(InputError, match="samples is 0; it must be 1 to 64"):
        engine.run(SampleRequest(checkpoint=str(text), count=0))


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
    names = ["sketch.pt", "sketch.png", "sketch-losses.csv", "sketch-metrics.json"]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == sorted(
        [*names, "sketch-recipe.json"]
    )  # and no staging folder left behind
    recipe = json.loads((tmp_path / "run" / "sketch-recipe.json").read_text())
    assert recipe["params"]["batch"] == 4  # SVL's default
    assert recipe["params"]["task"] == "adapt"
    code = cli_main(
        ["--device", "cpu", "gan-sample", str(out), "-n", "3", "-o", str(tmp_path / "s")]
    )
    assert code == 0
    assert len(list((tmp_path / "s").glob("sample_*.png"))) == 3
    assert {"samples.png", "metrics.json", "recipe.json"} <= {
        p.name for p in (tmp_path / "s").iterdir()
    }
    assert cli_main(["--device", "cpu", "gan-sample", str(tmp_path / "missing.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--iterations", "0"], "iterations is 0; it must be 1 to 5000"),
        (["--batch", "40"], "batch is 40; it must be 1 to 32"),
        (["--lr", "nan"], "learning rate must be a finite number"),
        (["--method", "nada", "--target", "photo"], "same"),
    ],
)
def test_cli_refuses_bad_values_with_the_declared_range(
    tiny_files, local_model, flags, message, capsys
):
    local_model("gan", "cat256", tiny_files["generator"])
    local_model("gan", "clip", tiny_files["clip"])
    args = ["--device", "cpu", "gan-adapt", "--source", "photo", "--target", "sketch", *flags]
    assert cli_main(args) == 2
    assert message in capsys.readouterr().err


def test_cli_options_keep_their_names():
    from engines.cli import build_parser

    args = build_parser().parse_args(
        [
            "gan-adapt", "--model", "church256", "--source", "photo", "--target", "sketch",
            "--method", "nada", "--iterations", "7", "--seed", "3", "--batch", "2", "--lr",
            "0.001", "--layer-k", "4", "--second-clip", "--stage1-iterations", "5",
            "--variations", "3", "--lambda-cov", "1", "--lambda-ewc", "2", "--lambda-rel", "0",
            "--eval-samples", "8", "-o", "x.pt",
        ]
    )  # fmt: skip
    assert (args.model, args.method, args.iterations, args.batch, args.layer_k) == (
        "church256",
        "nada",
        7,
        2,
        4,
    )
    assert args.second_clip is True and args.lambda_rel == 0.0 and str(args.output) == "x.pt"
    assert build_parser().parse_args(["gan-adapt"]).batch is None  # the method's default
    args = build_parser().parse_args(
        ["gan-sample", "a.pt", "-n", "3", "--seed", "2", "--truncation", "0.5", "--target", "x"]
    )
    assert (str(args.checkpoint), args.count, args.seed, args.truncation) == ("a.pt", 3, 2, 0.5)
