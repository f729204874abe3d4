"""NeRF editing, ED-NeRF-style: a TensoRF field fitted in Stable Diffusion's latent space, with
a refinement network, edited with Delta Denoising Score.

The engine module (and torch with it) is imported on first use, so the app starts light.
"""

from .requests import EXAMPLE, EditRequest, ReconstructRequest, RenderRequest
from .results import NerfResult

__all__ = [
    "EXAMPLE",
    "EditRequest",
    "NerfEditEngine",
    "NerfResult",
    "ReconstructRequest",
    "RenderRequest",
]


def __getattr__(name: str):
    if name == "NerfEditEngine":
        from . import engine

        return engine.NerfEditEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
