"""Loading the Stable Diffusion backbones from the registry, one resident at a time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..device import DeviceSpec
from ..registry import Registry


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


class Backbones:
    """The engine's Stable Diffusion pipelines by registry component name ("sd15",
    "sd21base"); asking for another releases the one held."""

    def __init__(self, registry: Registry, engine: str, device: DeviceSpec):
        self.registry = registry
        self.engine = engine
        self.device = device
        self.name: str | None = None
        self.pipe = None
        self.source: dict | None = None

    def get(self, name: str):
        if name != self.name:
            self.release()
            resolved = self.registry.resolve(self.engine, name)
            self.pipe = load_sd_pipeline(resolved.folder, self.device)
            self.name, self.source = name, resolved.recipe_entry()
        return self.pipe

    def release(self) -> None:
        import gc

        self.name, self.pipe, self.source = None, None, None
        gc.collect()
        if self.device.device.startswith("cuda"):
            torch.cuda.empty_cache()

    @property
    def components(self) -> dict[str, Any]:
        """For the manager's memory accounting."""
        return {"pipeline": self.pipe} if self.pipe is not None else {}
