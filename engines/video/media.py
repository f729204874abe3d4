"""Pictures of a video result: the frames with their boxes drawn, and a strip of frames (the
mp4 files are `engines.mp4`'s)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

BOX_COLOUR = (230, 25, 75)


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """(F, H, W, 3) floats in [0, 1] -> uint8, rounded as diffusers' numpy_to_pil does."""
    return (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)


def pixel_box(box: Sequence[float], width: int, height: int) -> tuple[float, ...]:
    x0, y0, x1, y1 = box
    return (x0 * width, y0 * height, x1 * width, y1 * height)


def draw_boxes(frames: np.ndarray, boxes: np.ndarray, label: str = "") -> np.ndarray:
    """The frames with each frame's box outlined (and labelled with the subject phrase)."""
    out = []
    for frame, box in zip(frames, boxes, strict=True):
        image = Image.fromarray(frame)
        draw = ImageDraw.Draw(image)
        width = max(2, image.width // 170)
        coords = pixel_box(box, image.width, image.height)
        draw.rectangle(coords, outline=BOX_COLOUR, width=width)
        if label:
            draw.text((coords[0] + width + 1, coords[1] + width), label, fill=BOX_COLOUR)
        out.append(np.asarray(image))
    return np.stack(out)


def frame_strip(frames: np.ndarray, count: int = 8, height: int = 128) -> Image.Image:
    """`count` evenly spaced frames side by side, each `height` px high."""
    picks = np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int)
    tiles = []
    for index in picks:
        tile = Image.fromarray(frames[index])
        width = max(1, round(tile.width * height / tile.height))
        tiles.append(tile.resize((width, height), Image.Resampling.LANCZOS))
    strip = Image.new("RGB", (sum(t.width for t in tiles) + 2 * (len(tiles) - 1), height), "white")
    x = 0
    for tile in tiles:
        strip.paste(tile, (x, 0))
        x += tile.width + 2
    return strip
