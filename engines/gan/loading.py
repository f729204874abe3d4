"""The engine's components: CLIP loaded with the engine, generators loaded when first picked."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..manager import LoadContext
from .catalog import CLIP_COMPONENTS  # noqa: F401 (also importable here)
from .checkpoint import load_generator
from .clip_guide import ClipGuide
from .stylegan2 import Generator


@dataclass
class LoadedGenerator:
    generator: Generator
    mean_w: torch.Tensor


class GanModels:
    """Resolves and loads components on first use through the engine's LoadContext, so each one
    is recorded in the recipe's model sources. `components` (the torch modules) lets the
    manager count their memory."""

    def __init__(self, context: LoadContext):
        self.context = context
        self.device = context.device.torch_device
        self.components: dict[str, torch.nn.Module] = {}
        self._clips: dict[str, ClipGuide] = {}
        self._generators: dict[str, LoadedGenerator] = {}

    def clip(self, component: str = "clip") -> ClipGuide:
        if component not in self._clips:
            resolved = self.context.resolve(component)
            guide = ClipGuide.load(resolved.folder, self.device, component)
            self._clips[component] = guide
            self.components[component] = guide.model
        return self._clips[component]

    def generator(self, component: str) -> LoadedGenerator:
        if component not in self._generators:
            resolved = self.context.resolve(component)
            generator, latent_avg = load_generator(resolved.folder)
            generator = generator.to(self.device)
            if latent_avg is None:
                mean_w = generator.mean_latent()
            else:
                mean_w = latent_avg.to(self.device)
            self._generators[component] = LoadedGenerator(generator, mean_w)
            self.components[component] = generator
        return self._generators[component]

    def sources(self, components: list[str]) -> dict[str, dict]:
        return {
            name: self.context.sources[name] for name in components if name in self.context.sources
        }
