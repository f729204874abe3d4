"""Layout to image: BACON-style boundary-attention-constrained guidance of Stable Diffusion.

The engine module (and torch with it) is imported on first use, so the app starts light.
"""

from .requests import LayoutRequest, PhraseBox

__all__ = ["LayoutEngine", "LayoutRequest", "LayoutResult", "PhraseBox"]


def __getattr__(name: str):
    if name in ("LayoutEngine", "LayoutResult"):
        from . import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
