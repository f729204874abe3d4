"""Which registry components of the GAN engine are generators (no torch: the tab lists them
before the engine exists)."""

from __future__ import annotations

from ..registry import Registry

ENGINE = "gan"
CLIP_COMPONENTS = ("clip", "clip_b16")


def generator_choices(registry: Registry, engine: str = ENGINE) -> dict[str, str]:
    """Registry generators: component name -> description."""
    return {
        spec.name: spec.description
        for spec in registry.components(engine)
        if spec.name not in CLIP_COMPONENTS
    }
