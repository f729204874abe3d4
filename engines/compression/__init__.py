"""Extreme image compression with VQGAN tokens: aMUSEd's VQGAN, K-means-reduced codebooks,
range coding under its masked transformer, and masked-token restoration."""

from .bitstream import ZscHeader, read_zsc, write_zsc
from .codebook import CODEBOOK_SIZES
from .codec import CODERS, TokenCodec
from .engine import (
    CompressionEngine,
    CompressRequest,
    CompressResult,
    DecompressRequest,
    DecompressResult,
    RestoreRequest,
    RestoreResult,
)

__all__ = [
    "CODEBOOK_SIZES",
    "CODERS",
    "CompressionEngine",
    "CompressRequest",
    "CompressResult",
    "DecompressRequest",
    "DecompressResult",
    "RestoreRequest",
    "RestoreResult",
    "TokenCodec",
    "ZscHeader",
    "read_zsc",
    "write_zsc",
]
