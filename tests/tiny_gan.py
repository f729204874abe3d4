"""Tiny, randomly initialised StyleGAN2 and open_clip models, saved in the real formats: a
rosinality checkpoint ({"g_ema": ..., "latent_avg": ...}) and an open_clip folder
(open_clip_config.json + open_clip_model.safetensors, as the Hub's timm/*clip* repos ship)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from engines.gan.checkpoint import save_generator
from engines.gan.stylegan2 import Generator, GeneratorConfig

TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}
OPENAI_PREPROCESS = {
    "mean": [0.48145466, 0.4578275, 0.40821073],
    "std": [0.26862954, 0.26130258, 0.27577711],
    "interpolation": "bicubic",
    "resize_mode": "shortest",
}


def tiny_generator_config(size: int = 32) -> GeneratorConfig:
    """Same block structure as the published generators (mapping, const, conv pairs per
    resolution, ToRGB skips), narrow and shallow."""
    channels = {4: 32, 8: 32, 16: 16, 32: 16, 64: 8, 128: 8}
    return GeneratorConfig(
        size=size,
        style_dim=32,
        n_mlp=2,
        channels=tuple((r, c) for r, c in channels.items() if r <= size),
    )


def tiny_generator(size: int = 32, seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    return Generator(tiny_generator_config(size)).eval()


def save_tiny_generator(path: Path, size: int = 32, seed: int = 0) -> Path:
    generator = tiny_generator(size, seed)
    return save_generator(generator, path, generator.mean_latent(256))


def save_tiny_open_clip(folder: Path, seed: int = 0) -> Path:
    """A random open_clip CLIP of a tiny config, saved as the real Hub folders are."""
    import open_clip
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = open_clip.CLIP(**json.loads(json.dumps(TINY_CLIP_CONFIG)))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "open_clip_model.safetensors"))
    config = {"model_cfg": TINY_CLIP_CONFIG, "preprocess_cfg": OPENAI_PREPROCESS}
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=2), "utf-8")
    return folder
