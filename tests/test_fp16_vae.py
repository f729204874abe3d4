"""On an fp16 run the Stable Diffusion VAE stays in fp32 (it overflows in fp16 and decodes NaN),
in every engine that loads it, and the System panel says so. An fp16 "device" on the CPU
stands in for an fp16 GPU: the dtypes chosen are the same."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from engines.device import DeviceSpec
from engines.parts import LoadContext
from engines.registry import Registry

FP16 = DeviceSpec("cpu", "float16")


def test_the_device_line_says_the_vae_is_kept_in_fp32():
    assert FP16.vae_dtype == torch.float32
    assert FP16.describe() == "cpu (float16; Stable Diffusion's VAE in float32)"
    assert DeviceSpec("cuda:0", "bfloat16").vae_dtype == torch.bfloat16
    assert DeviceSpec("cuda:0", "bfloat16").describe() == "cuda:0 (bfloat16)"


def test_video_keeps_the_vae_in_fp32_and_decodes_fp16_latents(tiny_video_dirs, local_model):
    from engines.video.loading import load_pipeline
    from engines.video.sampler import encode_reference, sample

    for name in ("sd15", "motion_adapter"):
        local_model("video", name, tiny_video_dirs[name])
    pipe = load_pipeline(LoadContext(Registry.load(), FP16, "video"))
    assert pipe.vae.dtype == torch.float32
    assert pipe.unet.dtype == pipe.text_encoder.dtype == torch.float16

    reference = encode_reference(pipe, Image.new("RGB", (64, 64), (200, 30, 30)), seed=0)
    assert reference.latent.dtype == torch.float16  # what the UNet reads
    video = sample(
        pipe,
        prompt="a red ball",
        negative_prompt="",
        frames=8,
        height=64,
        width=64,
        steps=1,
        guidance_scale=1.0,
        generator=torch.Generator("cpu").manual_seed(0),
    )
    assert video.shape == (8, 64, 64, 3) and np.isfinite(video).all()


def test_layout_keeps_the_vae_in_fp32_and_decodes(tiny_sd15_dir, local_model):
    from engines.layout.loading import load_sd_pipeline
    from engines.layout.sampler import sample

    local_model("layout", "sd15", tiny_sd15_dir)
    pipe = load_sd_pipeline(Registry.load().resolve("layout", "sd15"), FP16)
    assert pipe.vae.dtype == torch.float32 and pipe.unet.dtype == torch.float16
    image = sample(
        pipe,
        prompt="a red ball",
        negative_prompt="",
        height=64,
        width=64,
        steps=1,
        guidance_scale=1.0,
        generator=torch.Generator("cpu").manual_seed(0),
    ).image
    assert image.shape == (64, 64, 3) and np.isfinite(image).all()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_nerf_keeps_the_vae_in_fp32_only_on_fp16(tiny_sd15_dir, local_model, dtype):
    from engines.nerf.loading import load_vae

    local_model("nerf", "sd15", tiny_sd15_dir)
    decoder = load_vae(LoadContext(Registry.load(), DeviceSpec("cpu", dtype), "nerf"))
    expected = torch.float32 if dtype == "float16" else torch.bfloat16
    assert decoder.dtype == expected
    image = decoder.decode(torch.randn(1, 4, 8, 8, dtype=torch.float16))
    assert image.shape == (1, 3, 64, 64) and torch.isfinite(image).all()


def test_the_system_panel_shows_it():
    from engines.manager import ModelManager
    from tabs.system import status_rows

    status = ModelManager(Registry.load(), FP16).status()
    assert ["device", "cpu (float16; Stable Diffusion's VAE in float32)"] in status_rows(status)
