"""The edit metrics' CLIP is a choice (EditRequest.metric_model): ViT-B/32 (`nerf.clip`) by
default, or ViT-L/14 (`nerf.clip_l14`) as InstructPix2Pix and its peers report. Each stand-in
is a tiny random open_clip CLIP (the class ViT-L/14 is) saved as the Hub's open_clip folders
are and loaded through the engine's own loader; the figures must be the chosen model's, say
which model that was, and without it say which model is missing and how to get it."""

from __future__ import annotations

import math

import pytest
from tiny_gan import save_tiny_open_clip

from engines.nerf import EditRequest, ReconstructRequest
from engines.nerf.engine import CLIP_MODELS, EDIT_METRICS, edit_metrics, metric_views
from engines.studio import Studio

pytestmark = pytest.mark.usefixtures("one_thread")

TINY_FIT = dict(resolution=32, steps=10, grid=16, samples=16, batch_rays=256, preview_every=10)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("clips")
    return {
        "clip": save_tiny_open_clip(root / "b32", seed=0),
        "clip_l14": save_tiny_open_clip(root / "l14", seed=1),
    }


@pytest.fixture(scope="module")
def fitted(tiny_sd15_dir, clips, tmp_path_factory):
    """(the scene file of a tiny fit of the example, the env the engine runs with)."""
    env = {"ZSS_MODEL_NERF_SD15": str(tiny_sd15_dir), "ZSS_MODEL_NERF_CLIP": str(clips["clip"])}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        result = Studio(device="cpu").engine("nerf").run(ReconstructRequest(**TINY_FIT))
    path = tmp_path_factory.mktemp("scene") / "scene.nerf"
    path.write_bytes(result.scene)
    return path, env


def edit(fitted, monkeypatch, l14: str | None, metric_model: str):
    path, env = fitted
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if l14 is not None:
        monkeypatch.setenv("ZSS_MODEL_NERF_CLIP_L14", l14)
    request = EditRequest(
        scene=str(path), source="a toy", target="a golden toy", steps=1, frames=4,
        metric_model=metric_model,
    )  # fmt: skip
    return Studio(device="cpu").engine("nerf").run(request), request


def test_the_default_metric_model_is_vit_b32():
    assert EditRequest().metric_model == "clip"
    assert CLIP_MODELS["clip"] == "OpenAI CLIP ViT-B/32 (nerf.clip)"


def test_vit_l14_is_loaded_from_its_folder_and_named_in_the_figures(fitted, clips, monkeypatch):
    from engines.clip_guide import ClipGuide

    result, request = edit(fitted, monkeypatch, str(clips["clip_l14"]), "clip_l14")
    metrics = result.metrics
    assert metrics["clip_model"] == "OpenAI CLIP ViT-L/14 (nerf.clip_l14)"
    assert "clip_l14" in result.recipe.models and "clip" not in result.recipe.models
    before, after = metric_views(result.orbit_original), metric_views(result.orbit_edited)
    by_model = {
        name: edit_metrics(ClipGuide.load(folder, "cpu"), before, after, request)
        for name, folder in clips.items()
    }
    for name in EDIT_METRICS:
        assert math.isfinite(metrics[name]), name
        assert metrics[name] == pytest.approx(by_model["clip_l14"][name], abs=1e-6), name
    # the two stand-ins differ, so the figures are the chosen model's and not the default's
    assert any(abs(by_model["clip"][name] - metrics[name]) > 1e-4 for name in EDIT_METRICS), (
        by_model
    )
    assert not result.notes


@pytest.mark.parametrize("broken", ["not downloaded", "no config"])
def test_without_vit_l14_the_edit_is_made_and_says_what_is_missing(
    fitted, clips, monkeypatch, tmp_path, broken
):
    folder = None
    if broken == "not downloaded":  # no override and an empty Hub cache (offline in tests)
        from engines import downloads
        from engines import registry as registry_module

        monkeypatch.delenv("ZSS_MODEL_NERF_CLIP_L14", raising=False)
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
        monkeypatch.setattr(registry_module, "CACHE_DIR", tmp_path / "zss")
        monkeypatch.setattr(downloads, "_probes", {})
    else:  # weights without open_clip_config.json: not loadable
        folder = tmp_path / "l14"
        folder.mkdir()
        source = clips["clip_l14"] / "open_clip_model.safetensors"
        (folder / "open_clip_model.safetensors").write_bytes(source.read_bytes())
    result, _ = edit(fitted, monkeypatch, folder and str(folder), "clip_l14")
    assert result.steps_done == 1 and result.scene is not None
    assert result.metrics["clip_model"] == "OpenAI CLIP ViT-L/14 (nerf.clip_l14)"
    expected = "missing" if broken == "not downloaded" else "unusable"
    for name in EDIT_METRICS:
        value = result.metrics[name]
        assert value.startswith(f"not available (model nerf.clip_l14 {expected}"), value
    (note,) = result.notes
    assert "nerf.clip_l14" in note and "ZSS_MODEL_NERF_CLIP_L14" in note
    if broken == "not downloaded":
        assert "timm/vit_large_patch14_clip_224.openai" in note
        assert "zsstudio download nerf" in note
    else:
        assert "open_clip_config.json" in note
