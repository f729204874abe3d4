"""Extreme image compression with VQGAN tokens: aMUSEd's VQGAN, K-means-reduced codebooks,
range coding under its masked transformer, and masked-token restoration."""

from .engine import CompressionEngine
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
