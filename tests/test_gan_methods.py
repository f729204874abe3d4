"""The methods, measured on a tiny StyleGAN2 and a tiny open_clip CLIP: SVL stage 1 and 2,
EWC, relation consistency, NADA's layer selection, and what stays frozen."""

from __future__ import annotations

import threading

import pytest
import torch
import torch.nn.functional as F
from tiny_gan import save_tiny_open_clip, tiny_generator

from engines.clip_guide import ClipGuide
from engines.gan import nada, svl
from engines.gan.adapt import Adaptation
from engines.gan.engine import fixed_latents
from engines.gan.requests import AdaptRequest

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return ClipGuide.load(save_tiny_open_clip(tmp_path_factory.mktemp("clip")), "cpu")


@pytest.fixture
def generator():
    return tiny_generator(32, seed=1)


def adapt_request(method="svl", **overrides) -> AdaptRequest:
    base = dict(
        method=method,
        source="photo",
        target="pencil sketch",
        iterations=20,
        batch=4,
        preview_every=1000,
        stage1_iterations=200,
    )
    base.update(overrides)
    return AdaptRequest(**base)


def run_to_end(adaptation: Adaptation, stop: threading.Event | None = None) -> list:
    return list(adaptation.run(stop))


# -- stage 1 --------------------------------------------------------------------------------------


def test_stage1_variations_stay_close_to_target_and_spread(clip):
    target = clip.text_feature("pencil sketch")
    found = svl.semantic_variations(target, count=6, lambda_div=1.0, iterations=300, seed=0)
    cosine = F.cosine_similarity(found.vectors, target[None], dim=-1)
    # v_i = t + |t| u_i starts at cos ~ 0.71 (u_i random); L_cons pulls it up, L_div keeps the
    # z_i apart: the pairwise |cos| falls from its random start.
    assert found.vectors.shape == (6, target.numel())
    assert cosine.min() > 0.72
    assert found.target_cosine == pytest.approx(float(cosine.mean()), abs=1e-6)
    assert found.pairwise_abs_cosine < 0.5 * found.initial_pairwise_abs_cosine
    assert torch.allclose((found.vectors - target).norm(dim=-1), target.norm().expand(6), rtol=1e-4)


def test_text_directions_are_unit_rows_with_the_plain_target_last(clip):
    source, target = clip.text_feature("photo"), clip.text_feature("pencil sketch")
    found = svl.semantic_variations(target, count=3, iterations=10)
    directions = svl.text_directions(found.vectors, source, target)
    assert directions.shape == (4, target.numel())
    torch.testing.assert_close(directions.norm(dim=-1), torch.ones(4))
    torch.testing.assert_close(directions[-1], nada.text_direction(clip, "photo", "pencil sketch"))


# -- stage 2 --------------------------------------------------------------------------------------


def moment_loss_on(adaptation: Adaptation, clip: ClipGuide, w, noise) -> float:
    with torch.no_grad():
        source = clip.image_features(adaptation.source(w, noise))
        target = clip.image_features(adaptation.target(w, noise))
        dirs = nada.image_directions(source, target)
        mean, cov = svl.directional_moment_loss(
            dirs, adaptation.directions[0], adaptation.request.lambda_cov
        )
    return float(mean + cov)


def test_directional_moment_loss_falls_over_20_iterations(generator, clip):
    mean_w = generator.mean_latent(256)
    adaptation = Adaptation(generator, mean_w, [clip], adapt_request("svl", iterations=20))
    w, noise = fixed_latents(generator, mean_w, 16, seed=123, psi=0.7)  # held-out batch
    before = None
    for update in adaptation.run():
        if update.stage == "adapt" and update.step == 0:
            before = moment_loss_on(adaptation, clip, w, noise)
    after = moment_loss_on(adaptation, clip, w, noise)
    assert adaptation.iterations_done == 20
    assert after < before - 0.05


def test_ewc_is_zero_at_start_and_grows_with_drift(generator, clip):
    adaptation = Adaptation(
        generator, generator.mean_latent(256), [clip], adapt_request(iterations=5)
    )
    run_to_end(adaptation)
    assert adaptation.history[0]["ewc"] == 0.0
    assert adaptation.history[-1]["ewc"] > 0.0
    fisher = adaptation.fisher
    assert all((f >= 0).all() for f in fisher) and any(f.sum() > 0 for f in fisher)
    zero = svl.ewc_penalty(adaptation.anchors, adaptation.anchors, fisher)
    assert float(zero) == 0.0


def test_relation_loss_is_zero_when_generators_are_equal(generator, clip):
    adaptation = Adaptation(
        generator, generator.mean_latent(256), [clip], adapt_request(iterations=3)
    )
    run_to_end(adaptation)
    # iteration 1 runs before any update, on identical generators fed the same w and noise
    # (equal up to float rounding: the two copies' convolutions may pick different kernels)
    first, last = adaptation.history[0]["relation"], adaptation.history[-1]["relation"]
    assert abs(first) < 1e-4
    assert last > 10 * abs(first)
    features = F.normalize(torch.randn(4, 8), dim=-1)
    assert float(svl.relation_consistency(features, features)) == 0.0
    other = F.normalize(torch.randn(4, 8), dim=-1)
    assert float(svl.relation_consistency(features, other)) > 0.0


def test_only_synthesis_convolutions_change(generator, clip):
    source_before = {k: v.clone() for k, v in generator.state_dict().items()}
    adaptation = Adaptation(
        generator, generator.mean_latent(256), [clip], adapt_request(iterations=3)
    )
    run_to_end(adaptation)
    adapted = adaptation.target.state_dict()
    for key, value in generator.state_dict().items():
        assert torch.equal(value, source_before[key]), f"source changed: {key}"
        frozen = key.startswith(("style.", "to_rgb", "noises."))
        assert torch.equal(adapted[key], value) == frozen or key.endswith("kernel"), key
    assert not any(p.requires_grad for p in adaptation.target.parameters())


# -- NADA -----------------------------------------------------------------------------------------


def test_nada_directional_loss_aligns_image_changes(generator, clip):
    adaptation = Adaptation(generator, generator.mean_latent(256), [clip], adapt_request("nada"))
    run_to_end(adaptation)
    losses = [row["directional"] for row in adaptation.history]
    assert losses[0] == pytest.approx(1.0, abs=1e-3)  # equal generators: no direction yet
    assert sum(losses[-5:]) / 5 < 0.95


def test_nada_layer_selection_trains_only_chosen_layers(generator, clip):
    mean_w = generator.mean_latent(256)
    w, noise = fixed_latents(generator, mean_w, 4, seed=5, psi=0.7)
    chosen = nada.select_layers(generator, w, [clip], "pencil sketch", k=3, noise=noise)
    assert len(chosen) == 3 and chosen == sorted(set(chosen))
    assert all(0 <= i < generator.selectable_latents for i in chosen)
    assert not any(p.grad is not None for p in generator.parameters())

    adaptation = Adaptation(
        generator, mean_w, [clip], adapt_request("nada", iterations=1, layer_k=1)
    )
    run_to_end(adaptation)
    layers = [adaptation.target.conv1, *adaptation.target.convs]
    originals = [generator.conv1, *generator.convs]
    changed = [
        i
        for i, (new, old) in enumerate(zip(layers, originals, strict=True))
        if any(
            not torch.equal(a, b) for a, b in zip(new.parameters(), old.parameters(), strict=True)
        )
    ]
    assert len(changed) == 1
    assert adaptation.layer_counts == [1]


# -- stopping -------------------------------------------------------------------------------------


def test_stop_keeps_a_valid_partly_adapted_generator(generator, clip):
    adaptation = Adaptation(
        generator, generator.mean_latent(256), [clip], adapt_request(iterations=50, preview_every=2)
    )
    stop = threading.Event()
    updates = []
    for update in adaptation.run(stop):
        updates.append(update)
        if update.stage == "adapt" and update.step >= 2:
            stop.set()
    assert updates[-1].stage == "done" and updates[-1].message == "Stopped"
    assert adaptation.iterations_done == 2
    images = adaptation.target(*fixed_latents(generator, adaptation.mean_w, 2, 0, 0.7))
    assert torch.isfinite(images).all()
