"""Pictures of a result: the image with its boxes drawn, and attention heatmaps."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from .requests import PhraseBox

PALETTE = [
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
]
# Anchors of a perceptually ordered dark-blue -> cyan -> yellow -> red ramp.
_HEAT_ANCHORS = np.array(
    [[48, 18, 59], [40, 120, 220], [30, 210, 190], [160, 250, 60], [250, 185, 40], [200, 30, 10]],
    dtype=np.float32,
)


def color(index: int) -> tuple[int, int, int]:
    return PALETTE[index % len(PALETTE)]


def to_pil(image: np.ndarray) -> Image.Image:
    """(h, w, 3) floats in [0, 1] -> RGB image, rounded as diffusers' numpy_to_pil does."""
    return Image.fromarray((image * 255).round().astype("uint8"))


def draw_boxes(image: Image.Image, boxes: Sequence[PhraseBox], width: int = 3) -> Image.Image:
    """A copy of `image` with each box outlined in its colour and labelled with its phrase."""
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    for index, box in enumerate(boxes):
        rgb = color(index)
        draw.rectangle(box.coords(), outline=rgb, width=width)
        label = f"{index + 1}: {box.phrase}"
        left, top, right, bottom = draw.textbbox((box.x0 + width, box.y0 + width), label)
        draw.rectangle((left - 2, top - 1, right + 2, bottom + 1), fill=rgb)
        draw.text((box.x0 + width, box.y0 + width), label, fill=(255, 255, 255))
    return out


def colorize(values: np.ndarray) -> np.ndarray:
    """(h, w) in [0, 1] -> (h, w, 3) uint8 on the heat ramp."""
    position = np.clip(values, 0, 1) * (len(_HEAT_ANCHORS) - 1)
    low = np.floor(position).astype(int).clip(0, len(_HEAT_ANCHORS) - 2)
    frac = (position - low)[..., None]
    rgb = _HEAT_ANCHORS[low] * (1 - frac) + _HEAT_ANCHORS[low + 1] * frac
    return rgb.round().astype("uint8")


def heatmap(image: Image.Image, attention: np.ndarray, box: PhraseBox, index: int) -> Image.Image:
    """An attention map (h, w), scaled to its peak, upsampled onto the image, with the box."""
    peak = float(attention.max())
    values = attention / peak if peak > 0 else attention
    small = Image.fromarray((values * 255).round().astype("uint8"), mode="L")
    large = np.asarray(small.resize(image.size, Image.Resampling.BILINEAR), np.float32) / 255
    blend = Image.blend(image.convert("RGB"), Image.fromarray(colorize(large)), alpha=0.6)
    draw = ImageDraw.Draw(blend)
    draw.rectangle(box.coords(), outline=color(index), width=3)
    return blend
