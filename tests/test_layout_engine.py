"""The layout engine on a tiny SD-1.5-structured pipeline and a tiny Grounding DINO, both
saved in the real format and loaded through the registry and the engine's own loaders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline
from tiny_layout import save_tiny_grounding_dino

from engines import cli
from engines.detection import Detection
from engines.errors import InputError
from engines.layout import LayoutRequest
from engines.layout.attention import LAYER_MAPS, RecordingAttnProcessor, recording_attention
from engines.layout.guidance import GuidanceSettings, LayoutGuidance
from engines.layout.losses import feature_sizes
from engines.layout.sampler import sample
from engines.layout.scoring import BoxScore, match_boxes, summarize
from engines.registry import override_variable
from engines.studio import Studio

PROMPT = "a cat and a dog on a sofa"


@pytest.fixture(scope="module")
def tiny_detector_dir(tmp_path_factory):
    return save_tiny_grounding_dino(tmp_path_factory.mktemp("tiny-grounding-dino"))


@pytest.fixture(scope="module")
def studio(tiny_sd15_dir, tiny_detector_dir):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(override_variable("layout", "sd15"), str(tiny_sd15_dir))
        patch.setenv(override_variable("layout", "detector"), str(tiny_detector_dir))
        yield Studio(device="cpu")


@pytest.fixture(scope="module")
def engine(studio):
    from engines.layout import LayoutEngine

    return LayoutEngine(studio.manager)


@pytest.fixture(scope="module")
def pipe(engine):
    return engine.manager.load("layout").get("sd15")


def guidance_for(pipe, size: int, settings: GuidanceSettings | None = None) -> LayoutGuidance:
    """Guidance for 'a cat' (tokens 1-2) in the left half and 'dog' (token 5) in the right."""
    half = size // 2
    return LayoutGuidance(
        pipe.unet,
        pipe.scheduler,
        LAYER_MAPS["sd15"],
        [(1, 2), (5,)],
        [(0, 0, half, size), (half, 0, size, size)],
        (size, size),
        (size // 8, size // 8),
        settings or GuidanceSettings(),
    )


def run_sample(pipe, size, steps, seed, guidance=None, guided_steps=0):
    return sample(
        pipe,
        PROMPT,
        "",
        size,
        size,
        steps,
        7.5,
        torch.Generator("cpu").manual_seed(seed),
        guidance=guidance,
        guided_steps=guided_steps,
    ).image


def test_processors_record_the_mapped_layers_at_the_expected_sizes(pipe):
    size, steps = 64, 3
    guidance = guidance_for(pipe, size)
    with recording_attention(pipe.unet, guidance.store, guidance.layer_map) as layers:
        run_sample(pipe, size, steps, seed=0, guidance=guidance, guided_steps=1)
    assert not any(
        isinstance(p, RecordingAttnProcessor) for p in pipe.unet.attn_processors.values()
    )

    transformers = ["down_blocks.2.attentions.0", "down_blocks.2.attentions.1"]
    transformers += ["mid_block.attentions.0"]
    transformers += [f"up_blocks.1.attentions.{i}" for i in range(3)]
    expected = {f"{t}.transformer_blocks.0.{a}" for t in transformers for a in ("attn1", "attn2")}
    assert set(layers) == expected
    # the 16x16 layers of SD-1.5 at 512 px sit at 1/4 of the latent side, the mid block at 1/8
    sizes = feature_sizes((size // 8, size // 8))
    pixels = {"down_blocks.2": sizes[2], "up_blocks.1": sizes[2], "mid_block": sizes[3]}
    tokens = pipe.tokenizer.model_max_length
    log = guidance.store.log
    assert {layer for _, layer, _, _ in log} == expected
    for step, layer, kind, shape in log:
        h, w = pixels[layer.split(".attentions")[0]]
        assert step == 0, "recorded outside the guided step"
        assert shape == ((1, h * w, tokens) if kind == "cross" else (1, h * w, h * w)), layer
    forwards = len(guidance.reports[0].losses)
    assert len(log) == forwards * len(expected)  # one record per layer per guidance forward
    assert guidance.last_maps.shape == (2, *sizes[2])


def test_nothing_is_recorded_when_guidance_is_off(pipe, engine):
    plain = run_sample(pipe, 64, 2, seed=5)
    guidance = guidance_for(pipe, 64)
    with recording_attention(pipe.unet, guidance.store, guidance.layer_map):
        installed = run_sample(pipe, 64, 2, seed=5, guidance=None)
    assert guidance.store.log == []
    assert np.array_equal(plain, installed)  # idle processors defer to the stock ones exactly

    off = LayoutRequest(prompt=PROMPT, boxes=[("a cat", 0, 0, 32, 64)], width=64, height=64)
    for change in ({"strength": 0.0}, {"guided_fraction": 0.0}):
        result = engine.run(
            LayoutRequest(**{**off.to_params(), "steps": 2, "score": False, **change})
        )
        assert result.heatmaps == [] and result.metrics["guided_steps"] == 0


def test_a_guided_step_lowers_the_layout_loss(pipe):
    size = 128
    settings = GuidanceSettings(iterations=1, loss_threshold=0.0)
    guidance = guidance_for(pipe, size, settings)
    pipe.scheduler.set_timesteps(50)
    t = pipe.scheduler.timesteps[0]
    cond = pipe.encode_prompt(PROMPT, "cpu", 1, False)[0]
    latents = torch.randn(1, 4, size // 8, size // 8, generator=torch.Generator().manual_seed(1))
    with recording_attention(pipe.unet, guidance.store, guidance.layer_map), torch.no_grad():
        before = guidance.loss(latents, t, cond)[0].item()
        moved = guidance.guide(latents, t, cond, step=0)
        after = guidance.loss(moved, t, cond)[0].item()
    assert guidance.reports[0].updates == 1 and not guidance.reports[0].nan_skipped
    assert not torch.equal(moved, latents)
    assert after < before, (before, after)


def test_a_non_finite_loss_keeps_the_latent_and_is_counted(pipe):
    guidance = guidance_for(pipe, 64)
    pipe.scheduler.set_timesteps(10)
    cond = pipe.encode_prompt(PROMPT, "cpu", 1, False)[0]
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    latents[0, 0, 0, 0] = float("nan")
    with recording_attention(pipe.unet, guidance.store, guidance.layer_map):
        kept = guidance.guide(latents, pipe.scheduler.timesteps[0], cond, step=0)
    (report,) = guidance.reports
    assert report.nan_skipped and report.updates == 0 and report.losses == []
    assert torch.equal(kept.nan_to_num(), latents.nan_to_num())


def test_without_boxes_the_engine_equals_the_stock_pipeline_bit_for_bit(engine, pipe):
    stock = StableDiffusionPipeline(**pipe.components)  # the stock __call__ on the same weights
    stock.set_progress_bar_config(disable=True)
    kwargs = {"height": 64, "width": 64, "num_inference_steps": 3, "guidance_scale": 7.5}
    expected = stock(
        PROMPT, generator=torch.Generator("cpu").manual_seed(11), output_type="np", **kwargs
    )
    assert np.array_equal(run_sample(pipe, 64, 3, seed=11), expected.images[0])

    result = engine.run(LayoutRequest(prompt=PROMPT, width=64, height=64, steps=3, seed=11))
    expected_pil = stock(PROMPT, generator=torch.Generator("cpu").manual_seed(11), **kwargs).images[
        0
    ]
    assert np.array_equal(np.asarray(result.image), np.asarray(expected_pil))
    assert result.metrics["guided_steps"] == 0 and result.scores == []


def test_a_guided_run_gives_image_overlay_heatmaps_scores_and_a_recipe(engine, tmp_path):
    request = LayoutRequest(
        prompt=PROMPT,
        boxes=[("a cat", 0, 8, 32, 64), ("dog", 32, 0, 64, 56)],
        width=64,
        height=64,
        steps=3,
        seed=4,
        guided_fraction=0.5,
        iterations=2,
        loss_threshold=0.0,
    )
    result = engine.run(request)
    assert result.image.size == (64, 64)
    assert not np.array_equal(np.asarray(result.overlay), np.asarray(result.image))
    assert [caption for _, caption in result.heatmaps] == ["1: a cat", "2: dog"]
    assert result.metrics["guided_steps"] == 2 and result.metrics["latent_updates"] == 4
    assert 0 <= result.metrics["layout_loss_last"] <= 1
    assert len(result.scores) == 2 and 0 <= result.metrics["mIoU"] <= 1
    assert set(result.recipe.models) == {"sd15", "detector"}

    # The recipe reruns the request. Multi-threaded CPU backward passes sum in varying order
    # (~1e-11 in the latent gradient), so a guided rerun may differ by one grey level.
    again = engine.run_recipe(result.recipe)
    difference = np.abs(np.asarray(again.image, int) - np.asarray(result.image, int))
    assert difference.max() <= 1 and again.recipe.params == result.recipe.params

    written = {path.name for path in result.save(tmp_path)}
    assert {"image.png", "overlay.png", "recipe.json", "scores.json"} <= written
    assert {"heatmap-1-a-cat.png", "heatmap-2-dog.png"} <= written
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert len(scores["boxes"]) == 2 and "mIoU" in scores


def test_score_off_never_loads_the_detector(engine, monkeypatch):
    monkeypatch.setenv(override_variable("layout", "detector"), "/nonexistent/detector")
    engine.manager.release()
    request = LayoutRequest(
        prompt=PROMPT, boxes=[("dog", 8, 8, 56, 56)], width=64, height=64, steps=2, score=False
    )
    result = engine.run(request)
    assert result.scores == [] and result.metrics["layout_score"] == "off"
    assert not engine.manager.load("layout").is_loaded("detector")
    # the detector is for the metric only: without it the image is made all the same
    scored = engine.run(LayoutRequest(**{**request.to_params(), "score": True}))
    assert scored.image.size == (64, 64) and scored.scores == []
    assert scored.metrics["layout_score"] == "not available (model layout.detector missing)"
    assert set(scored.recipe.models) == {"sd15"}


def test_token_level_problems_stop_the_run_before_generating(engine):
    prompt = "a " + "very " * 80 + "tall giraffe"
    with pytest.raises(InputError, match="77-token limit"):
        engine.run(
            LayoutRequest(prompt=prompt, boxes=[("giraffe", 0, 0, 32, 32)], width=64, height=64)
        )


def test_detector_finds_boxes_inside_the_image(engine):
    detector = engine.manager.load("layout").get("detector")
    from PIL import Image

    image = Image.new("RGB", (96, 64), (200, 40, 40))
    found = detector.detect_phrases(image, ["a cat", "dog", "a cat"])
    assert set(found) == {"a cat", "dog"}
    for detections in found.values():
        for det in detections:
            x0, y0, x1, y1 = det.box
            assert 0 <= x0 <= x1 <= 96 and 0 <= y0 <= y1 <= 64 and 0.3 <= det.score <= 1


def test_box_matching_is_per_phrase_and_one_to_one():
    from engines.layout.requests import PhraseBox

    boxes = [
        PhraseBox("cat", 0, 0, 50, 50),
        PhraseBox("cat", 50, 0, 100, 50),
        PhraseBox("dog", 0, 50, 50, 100),
    ]
    detections = {
        "cat": [Detection((0, 0, 50, 50), 0.9), Detection((55, 0, 100, 50), 0.5)],
        "dog": [Detection((60, 60, 100, 100), 0.8)],  # the dog was drawn in the wrong place
    }
    first, second, dog = match_boxes(boxes, detections)
    assert first == BoxScore("cat", (0, 0, 50, 50), (0, 0, 50, 50), 0.9, 1.0)
    assert second.detected == (55, 0, 100, 50) and second.iou == pytest.approx(0.9)
    assert dog.detected is None and dog.iou == 0.0
    assert summarize([first, second, dog]) == pytest.approx({"mIoU": 1.9 / 3, "success@0.5": 2 / 3})
    lone = match_boxes(boxes[:2], {"cat": [Detection((0, 0, 50, 50), 0.9)]})
    assert [s.iou for s in lone] == [1.0, 0.0]  # one detection cannot serve two boxes


def test_cli_writes_outputs_and_rejects_bad_boxes(studio, tmp_path, capsys):
    args = ["--device", "cpu", "layout", "--prompt", PROMPT, "--box", "a cat:0.1,0.1,0.6,0.9"]
    args += ["--width", "64", "--height", "64", "--steps", "2", "--no-score", "-o", str(tmp_path)]
    assert cli.main(args) == 0
    assert {"image.png", "overlay.png", "recipe.json", "heatmap-1-a-cat.png"} <= {
        p.name for p in tmp_path.iterdir()
    }
    assert cli.main(args[:5] + ["--box", "a horse:0.1,0.1,0.6,0.9", "-o", str(tmp_path)]) == 2
    assert "'a horse' of box 1 is not in the prompt" in capsys.readouterr().err
