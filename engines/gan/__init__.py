"""Zero-shot GAN adaptation: StyleGAN2 (pure PyTorch) steered by CLIP with SVL or StyleGAN-NADA."""

from .adapt import AdaptSettings, AdaptUpdate
from .engine import GanAdaptEngine
from .requests import AdaptRequest, SampleRequest
from .results import GanAdaptResult, GanSampleResult
from .runs import AdaptationRun

__all__ = [
    "AdaptRequest",
    "AdaptSettings",
    "AdaptUpdate",
    "AdaptationRun",
    "GanAdaptEngine",
    "GanAdaptResult",
    "GanSampleResult",
    "SampleRequest",
]
