"""The subject photo: read and checked, cut out by its alpha channel or a mask, and laid on a
neutral canvas for the IP-Adapter, the reference pass and the metrics."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InputError
from ..images import open_image

MAX_BYTES = 20 * 2**20
MAX_SIDE = 4096
BACKGROUND = (127, 127, 127)  # neutral grey: no colour leaks into the subject's features
MARGIN = 0.1  # of the canvas side, around the subject on the reference canvas


@dataclass
class Subject:
    """The subject's pixels and, when known, its alpha (1 = subject)."""

    rgb: np.ndarray  # (H, W, 3) uint8
    alpha: np.ndarray | None = None  # (H, W) float32 in [0, 1]

    def cutout(self) -> Image.Image:
        """The subject on the neutral background, cropped to its alpha's extent."""
        rgb, alpha = self.rgb, self.alpha
        if alpha is not None:
            rows, cols = np.nonzero(alpha > 0.5)
            rgb = rgb[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
            alpha = alpha[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        return Image.fromarray(_composite(rgb, alpha))

    def canvas(self, width: int, height: int) -> tuple[Image.Image, np.ndarray]:
        """The cut-out scaled to fit a width x height canvas inside a margin, centred, on the
        neutral background; and the subject's alpha on that canvas (ones without alpha)."""
        cut = self.cutout()
        cut_alpha = None
        if self.alpha is not None:
            rows, cols = np.nonzero(self.alpha > 0.5)
            crop = self.alpha[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
            cut_alpha = Image.fromarray((crop * 255).round().astype(np.uint8), mode="L")
        room_w, room_h = width * (1 - 2 * MARGIN), height * (1 - 2 * MARGIN)
        scale = min(room_w / cut.width, room_h / cut.height)
        size = (max(1, round(cut.width * scale)), max(1, round(cut.height * scale)))
        at = ((width - size[0]) // 2, (height - size[1]) // 2)
        image = Image.new("RGB", (width, height), BACKGROUND)
        image.paste(cut.resize(size, Image.Resampling.LANCZOS), at)
        alpha = np.zeros((height, width), np.float32)
        placed = (
            np.asarray(cut_alpha.resize(size, Image.Resampling.BILINEAR), np.float32) / 255
            if cut_alpha is not None
            else np.ones(size[::-1], np.float32)
        )
        alpha[at[1] : at[1] + size[1], at[0] : at[0] + size[0]] = placed
        return image, alpha


def _composite(rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    if alpha is None:
        return rgb
    background = np.array(BACKGROUND, np.float32)
    mixed = rgb.astype(np.float32) * alpha[..., None] + background * (1 - alpha[..., None])
    return mixed.round().astype(np.uint8)


def _open(source: Any, what: str) -> Image.Image:
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, np.ndarray):
        array = source
        if array.dtype != np.uint8:
            array = (np.clip(array, 0, 1) * 255).round().astype(np.uint8)
        return Image.fromarray(array)
    if isinstance(source, (str, Path)) and Path(source).is_file():
        size = Path(source).stat().st_size
        if size > MAX_BYTES:
            raise InputError(
                f"The {what} {Path(source).name} is {size / 2**20:.1f} MB; at most "
                f"{MAX_BYTES // 2**20} MB."
            )
    if isinstance(source, (bytes, bytearray)) and len(source) > MAX_BYTES:
        raise InputError(
            f"The {what} is {len(source) / 2**20:.1f} MB; at most {MAX_BYTES // 2**20} MB."
        )
    return open_image(source, MAX_SIDE, what)


def load_subject(source: Any, mask: Any = None) -> Subject:
    """The subject from a path, bytes, PIL image or array; alpha from its own alpha channel
    (if it is not fully opaque) or from `mask` (white = subject)."""
    image = _open(source, "subject image")
    if image.width > MAX_SIDE or image.height > MAX_SIDE:
        raise InputError(
            f"The subject image is {image.width}x{image.height}; at most {MAX_SIDE} px a side."
        )
    if min(image.width, image.height) < 8:
        raise InputError(f"The subject image is {image.width}x{image.height}; too small.")
    rgba = np.asarray(image.convert("RGBA"))
    alpha = rgba[..., 3].astype(np.float32) / 255
    alpha = None if alpha.min() >= 1.0 else alpha
    if mask is not None:
        given = _open(mask, "subject mask")
        if given.size != image.size:
            raise InputError(
                f"The subject mask is {given.width}x{given.height}, the image "
                f"{image.width}x{image.height}; they must be the same size."
            )
        alpha = np.asarray(given.convert("L"), np.float32) / 255
    if alpha is not None and not (alpha > 0.5).any():
        raise InputError("The subject's mask (or alpha channel) is empty: nothing is the subject.")
    return Subject(np.ascontiguousarray(rgba[..., :3]), alpha)
