"""Loading the Stable Diffusion backbones from the registry (the detector: `detector`)."""

from __future__ import annotations

from pathlib import Path

from ..device import DeviceSpec
from ..loading import pretrained, unavailable
from ..parts import LoadContext
from ..registry import ResolvedModel


def load_sd_pipeline(resolved: ResolvedModel, device: DeviceSpec):
    """A StableDiffusionPipeline from a folder laid out like the Hub repo.

    The UNet, VAE and text encoder load strictly (a checkpoint missing any weight is refused,
    never run half random); the registry fetches only the parts listed in models.toml, so the
    safety checker and its feature extractor load when their folders are present, and are off
    otherwise.
    """
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    folder = Path(resolved.folder)
    missing = {
        part: None
        for part in ("safety_checker", "feature_extractor")
        if not (folder / part).is_dir()
    }
    if "safety_checker" in missing:
        missing["requires_safety_checker"] = False
    weights = {
        "unet": pretrained(resolved, UNet2DConditionModel, "unet", torch_dtype=device.dtype),
        "vae": pretrained(resolved, AutoencoderKL, "vae", torch_dtype=device.vae_dtype),
        "text_encoder": pretrained(resolved, CLIPTextModel, "text_encoder", dtype=device.dtype),
    }
    try:
        pipe = StableDiffusionPipeline.from_pretrained(
            folder, torch_dtype=device.dtype, **weights, **missing
        )
    except (OSError, ValueError, KeyError) as err:
        raise unavailable(resolved, str(err).strip().splitlines()[0]) from err
    pipe.to(device.torch_device)
    pipe.set_progress_bar_config(disable=True)
    for module in (pipe.unet, pipe.vae, pipe.text_encoder):
        module.eval().requires_grad_(False)
    return pipe


def backbone_loader(name: str):
    """A Parts loader for the Stable Diffusion backbone registered as `name`."""

    def load(context: LoadContext):
        return load_sd_pipeline(context.resolve(name), context.device)

    return load
