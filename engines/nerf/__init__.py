"""NeRF editing, ED-NeRF-style: a TensoRF field fitted in Stable Diffusion's latent space, with
a refinement network, edited with Delta Denoising Score."""

from .engine import NerfEditEngine
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
