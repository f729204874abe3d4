"""Property tests: each engine moves things the way its method says, not only "the loss goes
down". Each test here failed on the code before the fix it names (see the commit messages)."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from engines.layout.losses import (
    LossWeights,
    boundary_loss,
    box_coverage,
    inside_loss,
    layout_loss,
    outside_loss,
)

# -- layout --------------------------------------------------------------------------------------

MAP = 16  # a 16x16 attention map, SD-1.5's guided resolution at 512 px
TOY_LR = 10.0  # at this rate the inside term alone takes a 6x6 box's mass from 2% to over 90%
TOY_STEPS = 50


def blob_logits(row: float, col: float, seed: int = 0) -> torch.Tensor:
    """Logits of one phrase map: a Gaussian blob (peak e^5 times the background) plus noise."""
    y, x = torch.meshgrid(torch.arange(MAP).float(), torch.arange(MAP).float(), indexing="ij")
    noise = 0.3 * torch.randn(MAP, MAP, generator=torch.Generator().manual_seed(seed))
    return 5.0 * torch.exp(-((y - row) ** 2 + (x - col) ** 2) / (2 * 1.5**2)) + noise


def softmax_maps(logits: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits.flatten(1), dim=-1).view_as(logits)


def descend(logits: torch.Tensor, boxes, weights: LossWeights, steps: int = TOY_STEPS):
    """SGD on the logits through layout_loss; returns the inside mass of each map after each
    step, (steps + 1, maps), and the final maps."""
    masks = box_coverage(boxes, (MAP, MAP), (MAP, MAP))
    z = logits.clone()
    history = []
    for _ in range(steps + 1):
        z.requires_grad_(True)
        maps = softmax_maps(z)
        history.append((maps * masks).flatten(1).sum(1).detach())
        loss, _ = layout_loss(maps, masks, weights)
        (grad,) = torch.autograd.grad(loss, z)
        z = (z - TOY_LR * grad).detach()
    return torch.stack(history[: steps + 1]), softmax_maps(z).detach(), masks


def centred_box(side: int, row: int, col: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) in map cells of a side x side box whose top-left cell is (row, col)."""
    return (col, row, col + side, row + side)


def blob_centre(place: str, top: int, side: int) -> tuple[float, float]:
    """Where the blob starts for a box at rows and columns top .. top + side."""
    if place == "outside":
        return (3.0, 3.0)  # near the opposite corner
    if place == "straddling":
        return (top - 0.5, top - 0.5)  # on the box's top-left corner
    return (top + side / 2 - 0.5,) * 2  # at the box's centre


@pytest.mark.parametrize("side", [4, 6, 10])
@pytest.mark.parametrize("place", ["outside", "straddling", "inside"])
def test_layout_losses_move_a_misplaced_blob_into_its_box(side, place):
    top = MAP - 1 - side  # the box sits in the bottom-right corner, one cell from the edges
    box = centred_box(side, top, top)
    logits = blob_logits(*blob_centre(place, top, side))[None]

    history, maps, masks = descend(logits, [box], LossWeights())
    assert history[-1, 0] > 0.8, f"default weights: inside mass {history[-1, 0]:.3f}"
    peak = int(maps[0].flatten().argmax())
    assert masks[0].flatten()[peak] == 1.0, "the map's peak must end inside the box"

    if place == "inside":
        return
    start = float(history[0, 0])
    for weights in (LossWeights(1, 0, 0), LossWeights(0, 1, 0), LossWeights(0, 0, 1)):
        alone, _, _ = descend(logits, [box], weights)
        assert alone[-1, 0] > start + 0.05, (weights, start, float(alone[-1, 0]))
        assert alone[1, 0] > alone[0, 0], weights  # from the very first step


def test_layout_losses_move_two_blobs_into_their_boxes_at_once():
    """Two phrases, each misplaced in the other's box: both get there under the default mix."""
    boxes = [centred_box(6, 1, 1), centred_box(6, 9, 9)]
    logits = torch.stack([blob_logits(12, 12, seed=1), blob_logits(4, 4, seed=2)])
    history, maps, masks = descend(logits, boxes, LossWeights())
    assert (history[0] < 0.05).all()
    assert (history[-1] > 0.8).all(), history[-1]
    for index in range(2):
        assert masks[index].flatten()[int(maps[index].flatten().argmax())] == 1.0


def test_layout_boundary_term_has_gradient_inside_an_empty_box():
    box = centred_box(6, 9, 9)
    masks = box_coverage([box], (MAP, MAP), (MAP, MAP))
    maps = softmax_maps(blob_logits(3, 3)[None]).requires_grad_(True)
    assert float((maps.detach() * masks).sum()) < 0.05  # the box is (almost) empty

    (boundary_grad,) = torch.autograd.grad(boundary_loss(maps, masks).sum(), maps)
    (inside_grad,) = torch.autograd.grad(inside_loss(maps, masks).sum(), maps)
    in_box = masks[0] == 1
    # descent raises every cell of the box, with a pull comparable to the inside term's
    assert (boundary_grad[0][in_box] < 0).all()
    ratio = boundary_grad[0][in_box].abs().mean() / inside_grad[0][in_box].abs().mean()
    assert ratio > 0.1, f"boundary/inside gradient in the box: {ratio:.2e}"

    # the same through the softmax: one descent step on the logits adds mass to the box, at
    # least a tenth of what the inside term's step adds
    def gain(term) -> float:
        logits = blob_logits(3, 3)[None].requires_grad_(True)
        (grad,) = torch.autograd.grad(term(softmax_maps(logits), masks).sum(), logits)
        before = (softmax_maps(logits.detach()) * masks).sum()
        return float((softmax_maps(logits.detach() - TOY_LR * grad) * masks).sum() - before)

    assert gain(boundary_loss) > 0.1 * gain(inside_loss) > 0


def test_layout_outside_term_lowers_a_misplaced_peak_rather_than_sharpening_it():
    """The old peak-normalised outside term was lowest for the sharpest misplaced peak."""
    box = centred_box(6, 9, 9)
    masks = box_coverage([box], (MAP, MAP), (MAP, MAP))
    logits = blob_logits(3, 3)[None].requires_grad_(True)
    (grad,) = torch.autograd.grad(outside_loss(softmax_maps(logits), masks).sum(), logits)
    peak = int(logits.detach().flatten().argmax())
    assert grad.flatten()[peak] > 0  # descent lowers the misplaced peak


LAYOUT_PROMPT = "a cat and a dog on a sofa"


@pytest.fixture(scope="module")
def tiny_pipe(tiny_sd15_dir):
    from engines.device import DeviceSpec
    from engines.layout.loading import load_sd_pipeline
    from engines.registry import Registry, override_variable

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(override_variable("layout", "sd15"), str(tiny_sd15_dir))
        resolved = Registry.load().resolve("layout", "sd15")
    return load_sd_pipeline(resolved, DeviceSpec("cpu", "float32"))


def tiny_guidance(pipe, size: int = 64, **settings):
    from engines.layout.attention import LAYER_MAPS
    from engines.layout.guidance import GuidanceSettings, LayoutGuidance

    half = size // 2
    return LayoutGuidance(
        pipe.unet,
        pipe.scheduler,
        LAYER_MAPS["sd15"],
        [(1, 2), (5,)],  # "a cat", "dog"
        [(0, 0, half, size), (half, 0, size, size)],
        (size, size),
        (size // 8, size // 8),
        GuidanceSettings(**settings),
    )


def test_layout_every_guided_update_reaches_the_next_latent(tiny_pipe):
    """PNDM's second step restarts from the latent it stored at the first: a guidance update
    made before it would change the UNet's input only, never the trajectory."""
    from engines.layout.attention import recording_attention
    from engines.layout.sampler import sample

    pipe = tiny_pipe
    guidance = tiny_guidance(pipe, iterations=1, loss_threshold=0.0)
    guided: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # step -> latent before, after
    reached: dict[int, bool] = {}
    real_guide, real_step = guidance.guide, pipe.scheduler.step
    calls = []

    def guide(latents, t, cond, step, *between):
        moved = real_guide(latents, t, cond, step, *between)
        guided[step] = (latents.clone(), moved.clone())
        return moved

    def step(model_output, t, latents, *args, **kwargs):
        index = len(calls)
        calls.append(index)
        if index in guided:
            # the same step from the unguided latent, on a copy of the scheduler's state
            probe = copy.deepcopy(pipe.scheduler)
            del probe.step  # the copy's own method, not this wrapper
            unguided = probe.step(model_output, t, guided[index][0], *args, **kwargs)[0]
            out = real_step(model_output, t, latents, *args, **kwargs)
            reached[index] = not torch.equal(unguided, out[0])
            return out
        return real_step(model_output, t, latents, *args, **kwargs)

    guidance.guide = guide
    pipe.scheduler.step = step
    try:
        with recording_attention(pipe.unet, guidance.store, guidance.layer_map):
            sample(
                pipe, LAYOUT_PROMPT, "", 64, 64, 8, 7.5, torch.Generator().manual_seed(3),
                guidance=guidance, guided_steps=4,
            )  # fmt: skip
    finally:
        del pipe.scheduler.step
    assert len(guided) == 4, sorted(guided)  # as many guided steps as asked for
    for index, (before, after) in guided.items():
        assert not torch.equal(before, after), f"step {index}: guidance did not move the latent"
    assert reached == {index: True for index in guided}, reached


def test_layout_step_is_strength_times_the_weighted_sum_gradient(tiny_pipe):
    """Strength 30 is a step of 30 * sqrt(1 - alpha_bar_t) on the gradient of
    inside + outside + 0.5 boundary: each term moves with strength times its weight."""
    from engines.layout.attention import recording_attention

    pipe = tiny_pipe
    guidance = tiny_guidance(pipe, size=128, iterations=1, loss_threshold=0.0)
    pipe.scheduler.set_timesteps(50)
    t = pipe.scheduler.timesteps[0]
    cond = pipe.encode_prompt(LAYOUT_PROMPT, "cpu", 1, False)[0]
    latents = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    with recording_attention(pipe.unet, guidance.store, guidance.layer_map):
        z = latents.clone().requires_grad_(True)
        with torch.enable_grad():
            maps = guidance.maps(z, t, cond, step=0)
            masks = guidance.group_masks(tuple(maps.shape[1:]))
            terms = (
                inside_loss(maps, masks).mean()
                + outside_loss(maps, masks).mean()
                + 0.5 * boundary_loss(maps, masks).mean()
            )
        (grad,) = torch.autograd.grad(terms, z)
        moved = guidance.guide(latents, t, cond, step=0)
    alpha_bar = float(pipe.scheduler.alphas_cumprod[int(t)])
    expected = latents - 30.0 * math.sqrt(1 - alpha_bar) * grad
    torch.testing.assert_close(moved, expected, rtol=1e-4, atol=1e-6)
    (report,) = guidance.reports
    assert report.losses[0] == pytest.approx(
        float(terms.detach()) / 2.5, rel=1e-5
    )  # the weighted mean


# -- GAN adaptation ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    from tiny_gan import save_tiny_open_clip

    from engines.clip_guide import ClipGuide

    return ClipGuide.load(save_tiny_open_clip(tmp_path_factory.mktemp("clip")), "cpu")


def svl_adaptation(clip, **overrides):
    from tiny_gan import tiny_generator

    from engines.gan.adapt import Adaptation
    from engines.gan.requests import AdaptRequest

    generator = tiny_generator(32, seed=1)
    request = AdaptRequest(source="photo", target="pencil sketch", **overrides)
    request.validate()
    return Adaptation(generator, generator.mean_latent(256), [clip], request)


def test_svl_fisher_is_mean_of_per_sample_squared_gradients(tiny_clip):
    import torch.nn.functional as F

    adaptation = svl_adaptation(tiny_clip, batch=3)
    w, noise = adaptation._sample_batch()
    adaptation._sample_batch = lambda: (w, noise)
    adaptation._fisher_setup()

    # brute force: one forward and backward per sample, squared, averaged
    text = F.normalize(tiny_clip.text_feature("photo"), dim=0)
    expected = [torch.zeros_like(p) for p in adaptation.parameters]
    for n in range(3):
        image = adaptation.target(w[n : n + 1], [layer[n : n + 1] for layer in noise])
        score = (tiny_clip.image_features(image) @ text).sum()
        grads = torch.autograd.grad(score, adaptation.parameters, allow_unused=True)
        for total, grad in zip(expected, grads, strict=True):
            if grad is not None:
                total += grad.pow(2) / 3
    for got, want in zip(adaptation.fisher, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-12)
    assert sum(float(f.sum()) for f in expected) > 0


def test_adaptation_samples_untruncated(tiny_clip):
    """NADA and SVL train on W = mapping(z) as drawn; truncation 0.7 is for the previews."""
    from engines.gan.requests import AdaptRequest

    request = AdaptRequest(source="photo", target="pencil sketch")
    request.validate()  # the method's batch
    assert request.truncation == 0.7 and request.train_truncation == 1.0
    adaptation = svl_adaptation(tiny_clip)
    w, _ = adaptation._sample_batch()
    rng = torch.Generator().manual_seed(request.seed)  # the loop's generator, drawn again
    z = torch.randn(request.batch, adaptation.source.config.style_dim, generator=rng)
    with torch.no_grad():
        torch.testing.assert_close(w, adaptation.source.mapping(z))


# -- speech --------------------------------------------------------------------------------------


def as_transformers_4(model) -> None:
    """Make `model` report hidden states as transformers 4.x did: the last entry after the
    encoder's final layer norm (5.x reports every layer's own output)."""
    forward = model.forward

    def forward_4x(*args, **kwargs):
        out = forward(*args, **kwargs)
        if out.hidden_states is not None:
            last = model.encoder.layer_norm(out.hidden_states[-1])
            out.hidden_states = (*out.hidden_states[:-1], last)
        return out

    model.forward = forward_4x


def test_truncated_wavlm_layer6_equals_full_model_layer6(tmp_path):
    """kNN-VC's features are WavLM's 6th layer output without the final layer norm, however
    transformers reports hidden states."""
    import numpy as np
    from tiny_speech import tiny_wavlm_config
    from transformers import WavLMModel

    from engines.registry import ComponentSpec, ResolvedModel
    from engines.speech.features import WAVLM_LAYER, wavlm_features
    from engines.speech.vc import load_wavlm

    torch.manual_seed(0)
    full = WavLMModel(tiny_wavlm_config(num_hidden_layers=WAVLM_LAYER + 2)).eval()
    full.save_pretrained(tmp_path)
    spec = ComponentSpec("speech", "wavlm")
    truncated = load_wavlm(ResolvedModel(spec, tmp_path, "local"), torch.device("cpu"))
    assert len(truncated.encoder.layers) == WAVLM_LAYER

    samples = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    wave = torch.from_numpy(samples)[None]
    layer_out = []
    hook = full.encoder.layers[WAVLM_LAYER - 1].register_forward_hook(
        lambda _m, _i, out: layer_out.append(out[0])
    )
    with torch.no_grad():
        reported = full(wave, output_hidden_states=True).hidden_states[WAVLM_LAYER]
    hook.remove()
    expected = layer_out[0][0]
    # the reference is transformers' own layer 6 of the full model (the input of layer 7)
    torch.testing.assert_close(reported[0], expected)
    final_norm = full.encoder.layer_norm(expected)
    assert (final_norm - expected).abs().max() > 0.1  # the norm would change the features

    torch.testing.assert_close(wavlm_features(truncated, samples), expected, rtol=1e-5, atol=1e-5)
    as_transformers_4(truncated)
    torch.testing.assert_close(wavlm_features(truncated, samples), expected, rtol=1e-5, atol=1e-5)


def log_sweep(low_hz: float, high_hz: float, seconds: float, rate: int = 16000):
    """A voiced stand-in whose F0 sweeps between two frequencies, sinusoidally in semitones."""
    import numpy as np

    t = np.arange(int(seconds * rate)) / rate
    position = 0.5 + 0.5 * np.sin(2 * np.pi * 1.3 * t)
    f0 = low_hz * (high_hz / low_hz) ** position
    phase = 2 * np.pi * np.cumsum(f0) / rate
    wave = sum(np.sin(h * phase) / h for h in range(1, 9))
    return (0.3 * wave / np.max(np.abs(wave))).astype(np.float32)


@pytest.mark.parametrize(
    ("source_hz", "style_hz"),
    [
        ((110, 155), (100, 320)),  # 6 st to 20 st
        ((100, 160), (150, 400)),  # 8 st to 17 st, median up an octave
        ((120, 240), (150, 190)),  # 12 st to 4 st
    ],
)
def test_style_pitch_range_lands_within_tolerance(source_hz, style_hz):
    """The pitch range measured on the output (5th to 95th percentile, in semitones) is the
    style clip's, to half a semitone."""
    from engines.speech.style import measure, transfer

    rate = 16000
    target = measure(log_sweep(*style_hz, 2.5), rate)
    moved, before, move = transfer(log_sweep(*source_hz, 3.0), rate, target)
    landed = measure(moved, rate)
    assert abs(before.f0_range_semitones - target.f0_range_semitones) > 4  # a real move
    assert landed.f0_range_semitones == pytest.approx(target.f0_range_semitones, abs=0.5)
    assert landed.f0_median_hz == pytest.approx(target.f0_median_hz, rel=0.05)


# -- compression ---------------------------------------------------------------------------------


def test_usage_weighted_kmeans_fits_the_codes_in_use():
    """Weighting codes by use lowers the quantisation error of the tokens images produce."""
    import numpy as np

    from engines.compression.codebook import kmeans_codebook

    rng = np.random.default_rng(0)
    codes = rng.normal(size=(1024, 8)).astype(np.float32)
    counts = np.zeros(1024, dtype=np.int64)
    used = rng.choice(1024, size=96, replace=False)
    counts[used] = rng.integers(1, 50, size=96)
    weights = counts + 0.1

    def error_on_use(book) -> float:
        residual = codes - book.centroids[book.labels]
        return float((weights * (residual**2).sum(1)).sum() / weights.sum())

    plain, weighted = kmeans_codebook(codes, 32), kmeans_codebook(codes, 32, weights=weights)
    assert error_on_use(weighted) < 0.8 * error_on_use(plain)
    for cluster in np.unique(weighted.labels):  # each centroid is its members' weighted mean
        members = weighted.labels == cluster
        mean = (weights[members, None] * codes[members]).sum(0) / weights[members].sum()
        np.testing.assert_allclose(weighted.centroids[cluster], mean, atol=1e-5)


def _store(tmp_path):
    import numpy as np

    from engines.compression.codebook import CodebookStore

    codes = np.random.default_rng(1).normal(size=(256, 4)).astype(np.float32)
    return CodebookStore(codes, "abc123", tmp_path)


def _rewrite(path, **changes):
    """Rewrite a cache file with some arrays changed and its checksums made to match, so that
    only the value checks can catch the change."""
    import numpy as np

    from engines.compression.codebook import write_checked

    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    inputs = str(arrays.pop("inputs_sha256"))
    arrays.pop("content_sha256")
    write_checked(path, {**arrays, **changes}, inputs)


def _corrupt(kind: str, path, store) -> None:
    import numpy as np

    if kind == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "out-of-range labels":
        with np.load(path) as data:
            labels = data["labels"].copy()
        labels[3] = 16
        _rewrite(path, labels=labels)
    elif kind == "NaN centroids":
        with np.load(path) as data:
            centroids = data["centroids"].copy()
        centroids[2, 1] = np.nan
        _rewrite(path, centroids=centroids)
    elif kind == "content changed":  # checksum kept: a bit flip on disk
        with np.load(path) as data:
            arrays = {name: data[name] for name in data.files}
        arrays["centroids"] = arrays["centroids"] + np.float32(0.5)
        np.savez(path, **arrays)
    elif kind == "other inputs":  # a file made for other code vectors, under this name
        other = _store(path.parent / "other")
        other.codes = other.codes * 2
        other.get(16)
        path.write_bytes(other.cache_path(16).read_bytes())
    elif kind == "no checksums":  # the format before this change
        with np.load(path) as data:
            arrays = {n: data[n] for n in data.files if not n.endswith("sha256")}
        np.savez(path, **arrays)


CORRUPTIONS = [
    "truncated",
    "empty",
    "out-of-range labels",
    "NaN centroids",
    "content changed",
    "other inputs",
    "no checksums",
]


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_codebook_cache_is_recomputed_when_corrupt(tmp_path, caplog, kind):
    import logging

    import numpy as np

    from engines.compression.codebook import kmeans_codebook

    store = _store(tmp_path)
    book = store.get(16)
    path = store.cache_path(16)
    _corrupt(kind, path, store)

    with caplog.at_level(logging.WARNING, logger="engines.compression.codebook"):
        again = _store(tmp_path).get(16)
    assert any("recomputing" in r.getMessage() for r in caplog.records), kind
    expected = kmeans_codebook(store.codes, 16)
    assert np.array_equal(again.labels, expected.labels) and again.identity == book.identity
    assert np.array_equal(again.centroids, expected.centroids)

    caplog.clear()  # the recomputed file was written back, whole and checked
    with caplog.at_level(logging.WARNING, logger="engines.compression.codebook"):
        third = _store(tmp_path).get(16)
    assert not caplog.records and np.array_equal(third.labels, book.labels)


def test_codebook_cache_writes_atomically(tmp_path, monkeypatch):
    import numpy as np

    from engines.compression import codebook

    store = _store(tmp_path)
    store.get(16)
    path = store.cache_path(16)
    before = path.read_bytes()

    def fail(handle, **arrays):
        handle.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(codebook.np, "savez", fail)
    fresh = _store(tmp_path)
    fresh.codes = fresh.codes + 1  # other inputs: recomputed, and the write fails midway
    fresh.get(16)
    monkeypatch.undo()
    assert path.read_bytes() == before  # the old file is untouched
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left behind
    assert np.array_equal(_store(tmp_path).get(16).labels, store.get(16).labels)


@pytest.fixture(scope="module")
def compression_engine(tmp_path_factory):
    from tiny_compression import compression_studio, tiny_amused_in, tiny_photo

    base = tmp_path_factory.getbasetemp()
    photos = tmp_path_factory.mktemp("usage-photos")
    from PIL import Image

    for seed in range(2):
        Image.fromarray(tiny_photo(96, 64, seed=seed)).save(photos / f"photo{seed}.png")
    studio, undo = compression_studio(tiny_amused_in(base), base / "zss-cache-fidelity")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ZSS_COMPRESSION_USAGE_IMAGES", str(photos))
        yield studio.engine("compression")
    undo()


def test_zsc_says_which_kmeans_made_the_codebook_and_version_1_files_decode(compression_engine):
    import numpy as np
    from tiny_compression import tiny_photo

    from engines.compression import bitstream

    photo = tiny_photo(72, 52)
    plain = compression_engine.compress(photo, 16, "fixed", baselines=False)
    usage = compression_engine.compress(photo, 16, "fixed", baselines=False, kmeans="usage")
    plain_header, payload = bitstream.read_zsc(plain.zsc)
    usage_header, _ = bitstream.read_zsc(usage.zsc)
    assert (plain_header.kmeans, plain_header.usage_fingerprint) == ("plain", b"")
    assert usage_header.kmeans == "usage" and len(usage_header.usage_fingerprint) == 8
    assert usage_header.codebook_id != plain_header.codebook_id  # another clustering
    assert usage.metrics["kmeans"] == "usage"
    for result in (plain, usage):
        decoded = compression_engine.decompress(result.zsc)
        assert np.array_equal(decoded.tokens, result.tokens)
        assert decoded.metrics["kmeans"] == bitstream.read_zsc(result.zsc)[0].kmeans

    # a version-1 file (no K-means byte) is plain K-means, and still decodes
    version_1 = plain.zsc[:3] + b"\x01" + plain.zsc[4 : -len(payload) - 1] + payload
    header, _ = bitstream.read_zsc(version_1)
    assert header.kmeans == "plain"
    assert np.array_equal(compression_engine.decompress(version_1).tokens, plain.tokens)


def test_usage_weighted_files_need_the_same_usage(compression_engine, tmp_path, monkeypatch):
    from tiny_compression import tiny_photo

    from engines.compression import bitstream
    from engines.errors import InputError

    result = compression_engine.compress(tiny_photo(72, 52), 32, "fixed", False, kmeans="usage")
    header, payload = bitstream.read_zsc(result.zsc)
    other = bitstream.ZscHeader(**(header.__dict__ | {"usage_fingerprint": b"\x07" * 8}))
    with pytest.raises(InputError, match="usage counted on other photos"):
        compression_engine.decompress(bitstream.write_zsc(other, payload))


def test_code_usage_is_counted_on_the_shipped_photos_by_default(monkeypatch):
    from engines.compression.usage import SHIPPED_PHOTOS, usage_folder, usage_images

    monkeypatch.delenv("ZSS_COMPRESSION_USAGE_IMAGES", raising=False)
    assert usage_folder() == SHIPPED_PHOTOS
    names = [path.name for path in usage_images(usage_folder())]
    assert names == ["astronaut.png", "chelsea.png", "coffee.png"]
