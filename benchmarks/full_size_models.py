"""The released architectures with random weights, built from the config files in
benchmarks/configs/ and saved in the real on-disk layouts, so the engines load them through
their own loading code: costs (time, memory) are the real networks', outputs are meaningless.
Also each group's tiny counterpart from tests/tiny_*.py, for the smoke test.

Each group builder takes a folder and returns {component: path} (the registry component names
its engines read). benchmarks/layout.py, video.py, gan.py and full_size.py share them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = Path(__file__).resolve().parent / "configs"
sys.path.insert(0, str(ROOT / "tests"))  # the tiny builders and the CLIP tokenizer files


def config(name: str) -> dict:
    """One file of benchmarks/configs/ (the real checkpoint's config.json values)."""
    return json.loads((CONFIGS / f"{name}.json").read_text("utf-8"))


def _torch_dtype(dtype: str):
    import torch

    return getattr(torch, dtype)


def build_sd15(folder: Path, dtype: str = "float32") -> Path:
    """A folder laid out like stable-diffusion-v1-5: UNet (860M), CLIP ViT-L/14 text encoder,
    f8 VAE, PNDM scheduler, the real CLIP tokenizer files."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline
    from diffusers import UNet2DConditionModel as UNet
    from tiny_models import write_clip_tokenizer
    from transformers import CLIPTextConfig, CLIPTextModel

    folder = Path(folder)
    torch.manual_seed(0)
    pipe = StableDiffusionPipeline(
        vae=AutoencoderKL.from_config(config("sd15-vae")),
        text_encoder=CLIPTextModel(CLIPTextConfig.from_dict(config("sd15-text_encoder"))),
        tokenizer=write_clip_tokenizer(folder / "_tokenizer_src"),
        unet=UNet.from_config(config("sd15-unet")),
        scheduler=PNDMScheduler.from_config(config("sd15-scheduler")),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.to(_torch_dtype(dtype)).save_pretrained(folder)
    return folder


def build_motion_adapter(folder: Path, dtype: str = "float32") -> Path:
    import torch
    from diffusers import MotionAdapter

    torch.manual_seed(0)
    MotionAdapter.from_config(config("animatediff-motion-adapter-v1-5-2")).to(
        _torch_dtype(dtype)
    ).save_pretrained(folder)
    return Path(folder)


def build_ip_adapter(folder: Path, dtype: str = "float32") -> Path:
    """An h94/IP-Adapter folder: models/image_encoder (CLIP ViT-H/14 vision tower) and
    models/ip-adapter_sd15.safetensors with the original key names and shapes."""
    import torch
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch_dtype = _torch_dtype(dtype)
    models = Path(folder) / "models"
    torch.manual_seed(0)
    vision = CLIPVisionConfig.from_dict(config("ip-adapter-image-encoder-vit-h-14"))
    CLIPVisionModelWithProjection(vision).to(torch_dtype).save_pretrained(models / "image_encoder")
    shape = config("ip-adapter-sd15")
    cross, tokens, clip = (
        shape["cross_attention_dim"],
        shape["tokens"],
        shape["clip_embeddings_dim"],
    )
    unet = config("sd15-unet")["block_out_channels"]
    # each cross-attention layer's width, in the order diffusers numbers them (down, up, mid)
    sizes = [w for w in unet[:3] for _ in range(2)] + [w for w in unet[::-1][1:] for _ in range(3)]
    sizes.append(unet[-1])
    assert len(sizes) == shape["cross_attention_layers"]
    weights = {
        "image_proj.proj.weight": torch.randn(tokens * cross, clip) * 0.02,
        "image_proj.proj.bias": torch.zeros(tokens * cross),
        "image_proj.norm.weight": torch.ones(cross),
        "image_proj.norm.bias": torch.zeros(cross),
    }
    for index, size in enumerate(sizes):
        for name in ("to_k_ip", "to_v_ip"):
            weights[f"ip_adapter.{1 + 2 * index}.{name}.weight"] = torch.randn(size, cross) * 0.02
    save_file(
        {k: v.to(torch_dtype) for k, v in weights.items()}, models / "ip-adapter_sd15.safetensors"
    )
    return Path(folder)


def build_open_clip(folder: Path, name: str) -> Path:
    """An open_clip folder as the Hub's timm/*clip* repos ship it (config + safetensors)."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    settings = config(name)
    torch.manual_seed(0)
    model = open_clip.CLIP(**json.loads(json.dumps(settings["model_cfg"])))
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()},
        folder / "open_clip_model.safetensors",
    )
    (folder / "open_clip_config.json").write_text(json.dumps(settings, indent=2), "utf-8")
    return folder


def build_stylegan2(path: Path, size: int) -> Path:
    """A rosinality checkpoint of the published config-f generator at `size` px."""
    import torch

    from engines.gan.checkpoint import save_generator
    from engines.gan.stylegan2 import Generator, GeneratorConfig

    torch.manual_seed(0)
    net = Generator(GeneratorConfig.published(**config(f"stylegan2-config-f-{size}")))
    return save_generator(net, Path(path), net.mean_latent())


def build_amused(folder: Path) -> Path:
    """A folder laid out like amused/amused-512 (model_index.json, vqvae/, transformer/,
    text_encoder/, tokenizer/, scheduler/)."""
    import warnings

    import torch
    from diffusers import AmusedPipeline, AmusedScheduler, UVit2DModel, VQModel
    from tiny_models import write_clip_tokenizer
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    folder = Path(folder)
    torch.manual_seed(0)
    text = CLIPTextConfig.from_dict(config("amused-512-text_encoder"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the aMUSEd pipeline class is marked deprecated
        AmusedPipeline(
            vqvae=VQModel.from_config(config("amused-512-vqvae")),
            tokenizer=write_clip_tokenizer(folder / "tokenizer"),
            text_encoder=CLIPTextModelWithProjection(text),
            transformer=UVit2DModel.from_config(config("amused-512-transformer")),
            scheduler=AmusedScheduler.from_config(config("amused-512-scheduler")),
        ).save_pretrained(folder)
    return folder


# -- groups: what one build writes, full size and tiny -----------------------------------------


def _sd15(folder: Path, tiny: bool, dtype: str) -> dict[str, Path]:
    if tiny:
        from tiny_models import save_tiny_sd15_pipeline

        return {"sd15": save_tiny_sd15_pipeline(folder)}
    return {"sd15": build_sd15(folder, dtype)}


def _animatediff(folder: Path, tiny: bool, dtype: str) -> dict[str, Path]:
    if tiny:
        from tiny_video import save_tiny_ip_adapter, save_tiny_motion_adapter

        return {
            "motion_adapter": save_tiny_motion_adapter(folder / "motion"),
            "ip_adapter": save_tiny_ip_adapter(folder / "ip"),
        }
    return {
        "motion_adapter": build_motion_adapter(folder / "motion", dtype),
        "ip_adapter": build_ip_adapter(folder / "ip", dtype),
    }


def _clip(folder: Path, tiny: bool, dtype: str) -> dict[str, Path]:
    if tiny:
        from tiny_gan import save_tiny_open_clip

        return {
            "clip": save_tiny_open_clip(folder / "b32"),
            "clip_b16": save_tiny_open_clip(folder / "b16", seed=1),
        }
    return {
        "clip": build_open_clip(folder / "b32", "open-clip-vit-b-32-openai"),
        "clip_b16": build_open_clip(folder / "b16", "open-clip-vit-b-16-openai"),
    }


def _stylegan2(folder: Path, tiny: bool, dtype: str) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    if tiny:
        from tiny_gan import save_tiny_generator

        return {
            "cat256": save_tiny_generator(folder / "tiny32.pt", 32),
            "ffhq1024": save_tiny_generator(folder / "tiny64.pt", 64, seed=1),
        }
    return {
        "cat256": build_stylegan2(folder / "config-f-256.pt", 256),
        "ffhq1024": build_stylegan2(folder / "config-f-1024.pt", 1024),
    }


def _amused(folder: Path, tiny: bool, dtype: str) -> dict[str, Path]:
    if tiny:
        from tiny_compression import save_tiny_amused

        return {"amused": save_tiny_amused(folder)}
    return {"amused": build_amused(folder)}


def _speech(folder: Path, tiny: bool, dtype: str) -> dict[str, Path]:
    from tiny_speech import save_speech_models

    return save_speech_models(folder, full_size=not tiny)


GROUPS: dict[str, Callable[[Path, bool, str], dict[str, Path]]] = {
    "sd15": _sd15,
    "animatediff": _animatediff,
    "clip": _clip,
    "stylegan2": _stylegan2,
    "amused": _amused,
    "speech": _speech,
}
ENGINE_GROUPS = {
    "layout": ("sd15",),
    "video": ("sd15", "animatediff"),
    "nerf": ("sd15", "clip"),
    "gan": ("stylegan2", "clip"),
    "compression": ("amused",),
    "speech": ("speech",),
}
"""The groups each engine's full-size run needs; their components go to that engine's
registry overrides (nerf reads `clip` as gan does, ViT-B/32)."""
