"""Loading AnimateDiff (SD 1.5 + motion adapter), the IP-Adapter and the metric models from the
registry, every checkpoint strictly (engines.loading.pretrained): none runs on random weights."""

from __future__ import annotations

from typing import Any

from ..loading import pretrained, pretrained_files, unavailable
from ..parts import LoadContext
from ..registry import ResolvedModel
from .requests import IP_ADAPTER_FILES

IP_MODELS = "models"
"""h94/IP-Adapter's folder of SD-1.5 files: the adapters and image_encoder/."""
# AnimateDiff's motion modules were trained with linear betas; diffusers' AnimateDiff docs pair
# them with DDIM this way.
SCHEDULER_OVERRIDES = {
    "beta_schedule": "linear",
    "clip_sample": False,
    "timestep_spacing": "linspace",
    "steps_offset": 1,
}


def load_pipeline(context: LoadContext):
    """AnimateDiffPipeline from the SD-1.5 folder's parts and the motion adapter."""
    from diffusers import (
        AnimateDiffPipeline,
        AutoencoderKL,
        DDIMScheduler,
        MotionAdapter,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel, CLIPTokenizer

    sd = context.resolve("sd15")
    motion = context.resolve("motion_adapter")
    dtype = context.device.dtype
    unet = pretrained(sd, UNet2DConditionModel, "unet", torch_dtype=dtype)
    vae = pretrained(sd, AutoencoderKL, "vae", torch_dtype=context.device.vae_dtype)
    text_encoder = pretrained(sd, CLIPTextModel, "text_encoder", dtype=dtype)
    tokenizer = pretrained_files(sd, CLIPTokenizer, "tokenizer")
    base = pretrained_files(sd, DDIMScheduler, "scheduler")
    scheduler = DDIMScheduler.from_config(base.config, **SCHEDULER_OVERRIDES)
    adapter = pretrained(motion, MotionAdapter, torch_dtype=dtype)
    pipe = AnimateDiffPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        motion_adapter=adapter,
        scheduler=scheduler,
        feature_extractor=None,
        image_encoder=None,
    )
    pipe.to(context.device.torch_device)
    pipe.set_progress_bar_config(disable=True)
    for module in (pipe.unet, pipe.vae, pipe.text_encoder):
        module.eval().requires_grad_(False)
    pipe.ip_variant = None  # which IP-Adapter file is attached (see use_ip_adapter)
    pipe.offloaded = False
    return pipe


def load_ip_encoder(context: LoadContext) -> dict[str, Any]:
    """The IP-Adapter's CLIP vision encoder (ViT-H/14 for SD 1.5), strictly; the adapter files
    themselves attach through diffusers' load_ip_adapter (`use_ip_adapter`)."""
    from transformers import CLIPVisionModelWithProjection

    resolved = context.resolve("ip_adapter")
    models = ip_models_subfolder(resolved)
    encoder_folder = f"{models}/image_encoder" if models else "image_encoder"
    encoder = pretrained(
        resolved, CLIPVisionModelWithProjection, encoder_folder, dtype=context.device.dtype
    )
    encoder.to(context.device.torch_device).eval().requires_grad_(False)
    return {"resolved": resolved, "encoder": encoder, "models": models}


def ip_models_subfolder(resolved: ResolvedModel) -> str:
    """Where the adapter files are under the resolved folder: "models" for the repo (or a copy
    of it), "" for an override pointing at its models/ folder itself."""
    folder = resolved.folder
    if not (folder / IP_MODELS).is_dir() and (folder / "image_encoder").is_dir():
        return ""
    return IP_MODELS


def use_ip_adapter(pipe, ip: dict[str, Any] | None, variant: str | None, scale: float) -> None:
    """Attach IP-Adapter `variant` ("plain", "plus") to the pipeline, or detach it (None)."""
    if pipe.ip_variant == variant:
        if variant is not None:
            pipe.set_ip_adapter_scale(scale)
        return
    if pipe.offloaded:  # hooks are re-made for the new set of models by set_cpu_offload
        set_cpu_offload(pipe, False, pipe._execution_device)
    if pipe.ip_variant is not None:
        pipe.unload_ip_adapter()
        pipe.ip_variant = None
    if variant is None:
        return
    resolved = ip["resolved"]
    ip["encoder"].to(pipe.unet.device)
    pipe.register_modules(image_encoder=ip["encoder"], feature_extractor=None)
    weight = IP_ADAPTER_FILES[variant]
    models = ip["models"]
    where = f"{models}/{weight}" if models else weight
    if not (resolved.folder / where).is_file():
        raise unavailable(resolved, f"no {where} in {resolved.folder}")
    try:
        pipe.load_ip_adapter(
            str(resolved.folder), subfolder=models, weight_name=weight, local_files_only=True
        )
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        pipe.register_modules(image_encoder=None)
        raise unavailable(resolved, f"{where} does not load: {err}") from err
    pipe.ip_variant = variant
    pipe.set_ip_adapter_scale(scale)


def set_cpu_offload(pipe, on: bool | str, device) -> None:
    """CPU offload off (False), model offload (True or "model": each model moves to the GPU
    while it runs) or "sequential" (each layer does). CUDA only; elsewhere it stays off."""
    mode = "model" if on is True else on or False
    if device.type != "cuda":
        mode = False
    if mode == pipe.offloaded:
        return
    if pipe.offloaded:
        pipe.remove_all_hooks()
        pipe.to(device)
    if mode == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif mode == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    pipe.offloaded = mode


def set_memory_levers(pipe, levers: tuple[str, ...], device) -> None:
    """The pipeline's share of engines.low_memory's levers: VAE slicing and CPU offload
    (memory-efficient attention is a context around the sampling: `efficient_attention`)."""
    if "vae_slicing" in levers:
        pipe.vae.enable_slicing()
    else:
        pipe.vae.disable_slicing()
    offload = "sequential" if "sequential_offload" in levers else "model_offload" in levers
    set_cpu_offload(pipe, offload, device)


def load_clip(context: LoadContext) -> dict[str, Any]:
    """CLIP (text and vision towers) for CLIP-T, CLIP-I and temporal consistency."""
    import torch
    from transformers import CLIPModel, CLIPProcessor

    resolved = context.resolve("clip")
    model = pretrained(resolved, CLIPModel, dtype=torch.float32)
    model.to(context.device.torch_device).eval().requires_grad_(False)
    return {"model": model, "processor": pretrained_files(resolved, CLIPProcessor)}


def load_dino(context: LoadContext) -> dict[str, Any]:
    """DINO ViT-S/16 for DINO-I (its CLS token)."""
    import torch
    from transformers import AutoImageProcessor, ViTModel

    resolved = context.resolve("dino")
    model = pretrained(resolved, ViTModel, dtype=torch.float32, add_pooling_layer=False)
    model.to(context.device.torch_device).eval().requires_grad_(False)
    return {"model": model, "processor": pretrained_files(resolved, AutoImageProcessor)}
