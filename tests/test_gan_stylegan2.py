"""The pure-PyTorch StyleGAN2: FIR ops against numpy, the published state-dict layout, strict
round trips, and refusal of files that are not StyleGAN2 state dicts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from tiny_gan import (
    save_tiny_generator,
    tiny_generator,
    tiny_generator_config,
)

from engines.errors import InputError
from engines.gan.checkpoint import (
    build_generator,
    config_from_state,
    load_generator,
    read_checkpoint,
    save_generator,
)
from engines.gan.ops import blur_kernel_2d, upfirdn2d
from engines.gan.stylegan2 import Generator, GeneratorConfig

pytestmark = pytest.mark.usefixtures("one_thread")

# -- upfirdn2d ----------------------------------------------------------------------------------


def reference_upfirdn_1d(signal, taps, up, down, pad):
    """Zero-insert, pad, true convolution ('valid'), decimate: StyleGAN2's definition, in numpy."""
    upsampled = np.zeros(len(signal) * up)
    upsampled[::up] = signal
    padded = np.pad(upsampled, pad)
    return np.convolve(padded, taps, mode="valid")[::down]


def reference_upfirdn_2d(image, taps, up, down, pad):
    rows = np.stack([reference_upfirdn_1d(r, taps, up, down, pad) for r in image])
    return np.stack([reference_upfirdn_1d(c, taps, up, down, pad) for c in rows.T]).T


@pytest.mark.parametrize(
    "taps, up, down, pad, gain",
    [
        ((1, 3, 3, 1), 2, 1, (2, 1), 4),  # ToRGB skip upsampling
        ((1, 3, 3, 1), 1, 1, (1, 1), 4),  # blur after the transposed convolution
        ((1, 3, 3, 1), 1, 2, (1, 1), 1),  # downsampling (discriminator side)
        ((1, 2, 3, 4), 2, 1, (2, 1), 4),  # asymmetric taps: checks the kernel is flipped
    ],
)
def test_upfirdn2d_matches_numpy_reference(taps, up, down, pad, gain):
    rng = np.random.default_rng(0)
    image = rng.standard_normal((9, 9))
    kernel = blur_kernel_2d(taps) * gain
    ours = upfirdn2d(
        torch.tensor(image, dtype=torch.float64)[None, None], kernel.double(), up, down, pad
    )
    taps_1d = np.array(taps, dtype=np.float64) / sum(taps) * math.sqrt(gain)
    expected = reference_upfirdn_2d(image, taps_1d, up, down, pad)
    assert ours.shape[-2:] == expected.shape
    np.testing.assert_allclose(ours[0, 0].numpy(), expected, rtol=1e-6, atol=1e-6)


# -- the published layout -----------------------------------------------------------------------


def published_layout(size: int, channel_multiplier: int = 2, n_mlp: int = 8) -> dict[str, tuple]:
    """g_ema names and shapes as rosinality's convert_weight.py fills them from NVIDIA's
    TF checkpoints (G_mapping/Dense{i} -> style.{i+1}, {res}x{res}/Conv0_up -> convs.{2b},
    .../Conv1 -> convs.{2b+1}, .../ToRGB -> to_rgbs.{b}, noise{i} -> noises.noise_{i}), plus the
    FIR kernel buffers their modules register."""
    m, dim = channel_multiplier, 512
    width = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * m, 128: 128 * m, 256: 64 * m}
    width.update({512: 32 * m, 1024: 16 * m})
    layout: dict[str, tuple] = {}
    for i in range(1, n_mlp + 1):
        layout[f"style.{i}.weight"] = (dim, dim)
        layout[f"style.{i}.bias"] = (dim,)
    layout["input.input"] = (1, 512, 4, 4)

    def modulated(prefix, cin, cout, k):
        layout[f"{prefix}.weight"] = (1, cout, cin, k, k)
        layout[f"{prefix}.modulation.weight"] = (cin, dim)
        layout[f"{prefix}.modulation.bias"] = (cin,)

    def styled(prefix, cin, cout, up):
        modulated(f"{prefix}.conv", cin, cout, 3)
        layout[f"{prefix}.noise.weight"] = (1,)
        layout[f"{prefix}.activate.bias"] = (cout,)
        if up:
            layout[f"{prefix}.conv.blur.kernel"] = (4, 4)

    def to_rgb(prefix, cin, up):
        modulated(f"{prefix}.conv", cin, 3, 1)
        layout[f"{prefix}.bias"] = (1, 3, 1, 1)
        if up:
            layout[f"{prefix}.upsample.kernel"] = (4, 4)

    styled("conv1", 512, 512, up=False)
    to_rgb("to_rgb1", 512, up=False)
    log_size = int(math.log2(size))
    cin = 512
    for block, res in enumerate(2**i for i in range(3, log_size + 1)):
        styled(f"convs.{2 * block}", cin, width[res], up=True)
        styled(f"convs.{2 * block + 1}", width[res], width[res], up=False)
        to_rgb(f"to_rgbs.{block}", width[res], up=True)
        cin = width[res]
    for i in range((log_size - 2) * 2 + 1):
        side = 2 ** ((i + 5) // 2)
        layout[f"noises.noise_{i}"] = (1, 1, side, side)
    return layout


def meta_layout(config: GeneratorConfig) -> dict[str, tuple]:
    with torch.device("meta"):
        generator = Generator(config)
    return {k: tuple(v.shape) for k, v in generator.state_dict().items()}


@pytest.mark.parametrize("size, keys", [(256, 135), (1024, 171)])
def test_real_size_layout_matches_published_checkpoints(size, keys):
    ours = meta_layout(GeneratorConfig.published(size))
    assert ours == published_layout(size)
    assert len(ours) == keys


def test_real_size_spot_shapes_and_latent_count():
    ffhq = meta_layout(GeneratorConfig.published(1024))
    assert ffhq["convs.15.conv.weight"] == (1, 32, 32, 3, 3)
    assert ffhq["to_rgbs.7.conv.weight"] == (1, 3, 32, 1, 1)
    assert ffhq["noises.noise_16"] == (1, 1, 1024, 1024)
    cat = meta_layout(GeneratorConfig.published(256))
    assert cat["convs.11.conv.weight"] == (1, 128, 128, 3, 3)
    assert GeneratorConfig.published(1024).n_latent == 18
    assert GeneratorConfig.published(256).n_latent == 14


@pytest.mark.parametrize("size, multiplier", [(256, 2), (1024, 2), (512, 1)])
def test_config_is_inferred_from_a_published_state_dict(size, multiplier):
    config = GeneratorConfig.published(size, channel_multiplier=multiplier)
    with torch.device("meta"):
        state = Generator(config).state_dict()
    assert config_from_state(state) == config


# -- tiny generators: forward, strict round trip --------------------------------------------------


@pytest.mark.parametrize("size", [32, 64])
def test_tiny_generator_makes_images_of_its_size(size):
    generator = tiny_generator(size)
    w = generator.mapping(torch.randn(2, generator.config.style_dim))
    images = generator(w, generator.make_noise(2, torch.Generator().manual_seed(0)))
    assert images.shape == (2, 3, size, size)
    assert torch.isfinite(images).all()
    assert images.std() > 0.01


def test_state_dict_round_trip_is_strict_and_exact(tmp_path):
    path = save_tiny_generator(tmp_path / "tiny.pt", size=64, seed=3)
    data = torch.load(path, weights_only=True)
    assert set(data) == {"g_ema", "latent_avg"}
    fresh = Generator(tiny_generator_config(64))
    fresh.load_state_dict(data["g_ema"], strict=True)

    loaded, latent_avg = load_generator(path)
    assert latent_avg is not None and latent_avg.shape == (32,)
    original = tiny_generator(64, seed=3)
    for key, value in original.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    w = original.mapping(torch.randn(2, 32))
    noise = original.fixed_noise()
    noise = [n.expand(2, -1, -1, -1) for n in noise]
    torch.testing.assert_close(loaded(w, noise), original(w, noise))

    save_generator(loaded, tmp_path / "again.pt", latent_avg)
    again = torch.load(tmp_path / "again.pt", weights_only=True)["g_ema"]
    assert list(again) == list(data["g_ema"])


# -- files that are not StyleGAN2 state dicts -----------------------------------------------------


class NeedsCode:
    """Any object whose unpickling imports code from this module."""


def test_pickle_needing_code_execution_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"g_ema": NeedsCode()}, path)
    with pytest.raises(InputError, match="code execution"):
        read_checkpoint(path)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"this is not a checkpoint", "not a readable PyTorch checkpoint"),
        ([1, 2, 3], "not a checkpoint dict"),
        ({"g": {"x": torch.zeros(1)}}, "no `g_ema`"),
        ({"g_ema": {"input.input": torch.zeros(1, 8, 4, 4)}}, "rosinality's layout"),
    ],
)
def test_malformed_checkpoints_are_refused(tmp_path, content, message):
    path = tmp_path / "bad.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(InputError, match=message):
        load_generator(path)


def test_missing_key_or_wrong_shape_is_refused():
    state = tiny_generator(32).state_dict()
    missing = {k: v for k, v in state.items() if k != "conv1.noise.weight"}
    with pytest.raises(InputError, match="missing"):
        build_generator(missing)
    wrong = dict(state)
    wrong["convs.1.activate.bias"] = torch.zeros(5)
    with pytest.raises(InputError, match="does not match"):
        build_generator(wrong)


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_checkpoint(tmp_path / "nope.pt")
