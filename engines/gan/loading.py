"""The engine's parts, by registry component name: the CLIP critics and the generators, each
loaded on first use through the engine's LoadContext (so it is recorded in recipes)."""

from __future__ import annotations

from typing import NamedTuple

import torch

from ..clip_guide import ClipGuide
from ..loading import unavailable
from ..parts import LoadContext, PartLoader
from ..registry import Registry
from .catalog import CLIP_COMPONENTS, ENGINE, generator_choices
from .checkpoint import load_generator
from .stylegan2 import Generator


class LoadedGenerator(NamedTuple):
    """A generator and its mean W (a tuple, so the manager counts the generator's weights)."""

    generator: Generator
    mean_w: torch.Tensor


def clip_loader(component: str) -> PartLoader:
    def load(context: LoadContext) -> ClipGuide:
        resolved = context.resolve(component)
        try:
            return ClipGuide.load(resolved.folder, context.device.torch_device, component)
        except (OSError, RuntimeError, ValueError, KeyError) as err:
            raise unavailable(resolved, str(err).strip().splitlines()[0]) from err

    return load


def generator_loader(component: str) -> PartLoader:
    def load(context: LoadContext) -> LoadedGenerator:
        generator, latent_avg = load_generator(context.resolve(component).folder)
        generator = generator.to(context.device.torch_device)
        if latent_avg is None:
            mean_w = generator.mean_latent()
        else:
            mean_w = latent_avg.to(context.device.torch_device)
        return LoadedGenerator(generator, mean_w)

    return load


def parts(registry: Registry, engine: str = ENGINE) -> dict[str, PartLoader]:
    """Loaders by registry component: every CLIP critic and every generator."""
    loaders = {name: clip_loader(name) for name in CLIP_COMPONENTS}
    loaders.update({name: generator_loader(name) for name in generator_choices(registry, engine)})
    return loaders
