"""Loading the Stable Diffusion backbones from the registry."""

from __future__ import annotations

from pathlib import Path

from ..device import DeviceSpec
from ..manager import LoadContext


def load_sd_pipeline(folder: str | Path, device: DeviceSpec):
    """A StableDiffusionPipeline from a folder laid out like the Hub repo.

    The registry fetches only the parts listed in models.toml; the safety checker and its
    feature extractor load when their folders are present, and are off otherwise.
    """
    from diffusers import StableDiffusionPipeline

    folder = Path(folder)
    missing = {
        part: None
        for part in ("safety_checker", "feature_extractor")
        if not (folder / part).is_dir()
    }
    if "safety_checker" in missing:
        missing["requires_safety_checker"] = False
    pipe = StableDiffusionPipeline.from_pretrained(folder, torch_dtype=device.dtype, **missing)
    pipe.to(device.torch_device)
    pipe.set_progress_bar_config(disable=True)
    for module in (pipe.unet, pipe.vae, pipe.text_encoder):
        module.eval().requires_grad_(False)
    return pipe


def backbone_loader(name: str):
    """A LazyComponents loader for the Stable Diffusion backbone registered as `name`."""

    def load(context: LoadContext):
        return load_sd_pipeline(context.resolve(name).folder, context.device)

    return load
