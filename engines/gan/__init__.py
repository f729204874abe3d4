"""Zero-shot GAN adaptation: StyleGAN2 (pure PyTorch) steered by CLIP with SVL or StyleGAN-NADA.

The engine and result modules (and torch with them) are imported on first use, so the app
starts light.
"""

from .requests import AdaptRequest, SampleRequest

__all__ = [
    "AdaptRequest",
    "GanAdaptEngine",
    "GanAdaptResult",
    "GanSampleResult",
    "SampleRequest",
]


def __getattr__(name: str):
    if name == "GanAdaptEngine":
        from . import engine

        return engine.GanAdaptEngine
    if name in ("GanAdaptResult", "GanSampleResult"):
        from . import results

        return getattr(results, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
