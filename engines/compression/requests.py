"""What the compression engine is asked: compress an image (CompressRequest), decode a .zsc file
(DecompressRequest), or lose and restore some of a file's tokens (RestoreRequest)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..base import Request
from ..errors import InputError
from ..fields import choice, flag, integer, number, seed, value
from .codebook import CODEBOOK_SIZES, KMEANS_KINDS
from .codec import CODERS
from .restoration import DEFAULT_STEPS, MAX_LOSS

DEFAULT_CODEBOOK_SIZE = 256
DEFAULT_CODER = "fixed"
"""The fixed-length coder: its files decode on any machine (docs/compression.md, Known limits);
the model coder's decode only on the same kind of device and software stack."""
DEFAULT_LOST_FRACTION = 0.2
IN_MEMORY_IMAGE = "<in-memory image>"
IN_MEMORY_FILE = "<in-memory .zsc file>"


def _describe(source: Any, marker: str) -> str | None:
    """How an input is written in a recipe: its path, or a marker for in-memory data."""
    if source is None or isinstance(source, (str, Path)):
        return None if source is None else str(source)
    return marker


def _params(request: Request) -> dict[str, Any]:
    """The fields by name, without copying images (dataclasses.asdict deep-copies them)."""
    return {f.name: getattr(request, f.name) for f in dataclasses.fields(request)}


def _check_given(source: Any, marker: str, missing: str) -> None:
    if source is None or (isinstance(source, str) and not source.strip()):
        raise InputError(missing)
    if isinstance(source, str) and source == marker:
        what = "image" if marker == IN_MEMORY_IMAGE else ".zsc file"
        raise InputError(f"This recipe was made from an in-memory {what}; pass it as a file.")


@dataclass
class CompressRequest(Request):
    """Compress one image into a .zsc file, and measure it beside JPEG/WebP (`baselines`)."""

    task: ClassVar[str] = "compress"

    image: Any = value(help="the photo: a path, PIL image or HxWx3 array", required=True)
    codebook_size: int = choice(
        DEFAULT_CODEBOOK_SIZE,
        CODEBOOK_SIZES,
        "log2 K bits per token before entropy coding; 8192 is the full codebook",
        label="codebook size K",
        cli=("--codebook",),
    )
    coder: str = choice(
        DEFAULT_CODER,
        CODERS,
        "fixed: log2 K bits a token, decodes anywhere; model: range coding under the masked "
        "transformer, smaller, decodes on the same kind of device",
        label="entropy coder",
        labels=(
            "Fixed length, log2 K bits a token (decodes anywhere)",
            "Masked-transformer range coder (smaller)",
        ),
    )
    baselines: bool = flag(
        True,
        "also code the image with JPEG, WebP (and AVIF): smallest, and at the same bytes",
        label="classical baselines",
    )
    kmeans: str = choice(
        "plain",
        KMEANS_KINDS,
        "how the codebook is reduced to K: plain K-means over all 8192 codes, or weighted by "
        "how often photos use each code (ZSS_COMPRESSION_USAGE_IMAGES names the photos)",
        label="K-means",
        labels=("Plain K-means", "Weighted by code usage on photos"),
    )

    def check(self) -> None:
        _check_given(self.image, IN_MEMORY_IMAGE, "No image given: upload a photo to compress.")

    def to_params(self) -> dict[str, Any]:
        return _params(self) | {"image": _describe(self.image, IN_MEMORY_IMAGE)}


@dataclass
class DecompressRequest(Request):
    """Decode a .zsc file."""

    task: ClassVar[str] = "decompress"

    file: Any = value(help="the .zsc file: a path or its bytes", required=True)

    def check(self) -> None:
        _check_given(
            self.file, IN_MEMORY_FILE, "No .zsc file given: upload one made by the compression tab."
        )

    def to_params(self) -> dict[str, Any]:
        return {"file": _describe(self.file, IN_MEMORY_FILE)}


@dataclass
class RestoreRequest(Request):
    """Lose a seeded fraction of a file's tokens and restore them; `original` (optional) is the
    image the file was made from, to measure against."""

    task: ClassVar[str] = "restore"

    file: Any = value(help="the .zsc file: a path or its bytes", required=True)
    lost_fraction: float = number(
        DEFAULT_LOST_FRACTION,
        0.0,
        MAX_LOSS,
        "share of the tokens dropped before restoration",
        label="fraction lost",
        step=0.05,
        cli=("--loss",),
    )
    seed: int = seed(0, "which tokens are lost")
    steps: int = integer(DEFAULT_STEPS, 1, 64, "transformer passes of the restoration")
    original: Any = value(help="the image the file was made from, to measure against")

    def check(self) -> None:
        _check_given(self.file, IN_MEMORY_FILE, "No .zsc file given: compress an image first.")
        if isinstance(self.original, str) and not self.original.strip():
            self.original = None  # an empty upload: no original
        if isinstance(self.original, str) and self.original == IN_MEMORY_IMAGE:
            raise InputError(
                "This recipe was made with an in-memory original image; pass it as a file."
            )

    def to_params(self) -> dict[str, Any]:
        return _params(self) | {
            "file": _describe(self.file, IN_MEMORY_FILE),
            "original": _describe(self.original, IN_MEMORY_IMAGE),
        }
