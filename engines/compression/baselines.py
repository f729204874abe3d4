"""Classical baselines on the same image, through Pillow: real encoded bytes, decoded back.

- smallest: the codec's lowest quality at native size (none gets near 0.05 bpp);
- same bytes: the best PSNR the codec reaches within a byte budget, searching quality and a
  downscale before coding (upscaled back with Lanczos for measuring).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from .quality import psnr

LOWEST_QUALITY = {"JPEG": 1, "WebP": 0, "AVIF": 0}
QUALITIES = (1, 5, 10, 20, 35, 50, 75)
MIN_SIDE = 8


@dataclass(frozen=True)
class BaselineEncode:
    codec: str
    mode: str  # "smallest" or "same bytes"
    quality: int
    coded_size: tuple[int, int]  # (width, height) of the image that was encoded
    data: bytes  # the codec's file, as Pillow wrote it
    decoded: np.ndarray  # decoded and, if downscaled, upscaled to the original size

    @property
    def nbytes(self) -> int:
        return len(self.data)

    @property
    def scale(self) -> float:
        return self.coded_size[0] / self.decoded.shape[1]

    @property
    def setting(self) -> str:
        setting = f"quality {self.quality}"
        if self.scale < 1:
            setting += f", coded at {self.coded_size[0]}x{self.coded_size[1]}"
        return setting

    @property
    def label(self) -> str:
        return f"{self.codec} {self.mode} ({self.setting})"


def available_codecs() -> list[str]:
    from PIL import features

    codecs = ["JPEG"]
    if features.check("webp"):
        codecs.append("WebP")
    if features.check("avif"):
        codecs.append("AVIF")
    return codecs


def encode(image: np.ndarray, codec: str, quality: int, width: int | None = None) -> bytes:
    from PIL import Image

    picture = Image.fromarray(image)
    if width is not None and width != picture.width:
        height = max(1, round(picture.height * width / picture.width))
        picture = picture.resize((width, height), Image.Resampling.LANCZOS)
    options = {
        "JPEG": {"format": "JPEG", "quality": quality, "optimize": True},
        "WebP": {"format": "WEBP", "quality": quality, "method": 6},
        "AVIF": {"format": "AVIF", "quality": quality},
    }[codec]
    buffer = io.BytesIO()
    picture.save(buffer, **options)
    return buffer.getvalue()


def decode(data: bytes, size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode with Pillow, upscale to (width, height) if smaller; returns (image, coded size)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as picture:
        picture = picture.convert("RGB")
        coded = picture.size
        if coded != size:
            picture = picture.resize(size, Image.Resampling.LANCZOS)
        return np.asarray(picture, dtype=np.uint8).copy(), coded


def smallest(image: np.ndarray, codec: str) -> BaselineEncode:
    quality = LOWEST_QUALITY[codec]
    data = encode(image, codec, quality)
    decoded, coded = decode(data, (image.shape[1], image.shape[0]))
    return BaselineEncode(codec, "smallest", quality, coded, data, decoded)


def at_budget(image: np.ndarray, codec: str, budget: int) -> BaselineEncode | None:
    """The highest-PSNR encode of at most `budget` bytes, or None if even the smallest
    downscaled encode does not fit."""
    size = (image.shape[1], image.shape[0])
    min_width = max(1, min(size[0], round(MIN_SIDE * size[0] / min(size))))
    best: BaselineEncode | None = None
    best_psnr = -np.inf
    for quality in QUALITIES:
        fitting = _largest_fitting(image, codec, quality, budget, min_width)
        if fitting is None:
            continue
        decoded, coded = decode(fitting, size)
        score = psnr(image, decoded)
        if score > best_psnr:
            best_psnr = score
            best = BaselineEncode(codec, "same bytes", quality, coded, fitting, decoded)
    return best


def _largest_fitting(image, codec, quality, budget, min_width) -> bytes | None:
    """Binary search on the coded width for the largest encode within the budget."""
    low, high = min_width, image.shape[1]
    data = encode(image, codec, quality, low)
    if len(data) > budget:
        return None
    found = data
    while low < high:
        middle = (low + high + 1) // 2
        data = encode(image, codec, quality, middle)
        if len(data) <= budget:
            low, found = middle, data
        else:
            high = middle - 1
    return found
