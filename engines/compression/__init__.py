"""Extreme image compression with VQGAN tokens: aMUSEd's VQGAN, K-means-reduced codebooks,
range coding under its masked transformer, and masked-token restoration.

The engine module (and torch with it) is imported on first use, so the app starts light.
"""

from .requests import CompressRequest, DecompressRequest, RestoreRequest
from .results import CompressResult, DecompressResult, RestoreResult

__all__ = [
    "CompressionEngine",
    "CompressRequest",
    "CompressResult",
    "DecompressRequest",
    "DecompressResult",
    "RestoreRequest",
    "RestoreResult",
]


def __getattr__(name: str):
    if name == "CompressionEngine":
        from . import engine

        return engine.CompressionEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
