"""The layout canvas (gradio_image_annotation's value): a blank grid to draw on, and its boxes
as PhraseBoxes in pixels of the output, whatever size the canvas was drawn at."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from engines.layout.request import PhraseBox

GRID = 64


def blank_canvas(width: int, height: int) -> np.ndarray:
    """A light grid to draw on, the size of the output image."""
    image = Image.new("RGB", (int(width), int(height)), (250, 250, 252))
    draw = ImageDraw.Draw(image)
    for x in range(0, int(width), GRID):
        draw.line([(x, 0), (x, height)], fill=(225, 228, 235))
    for y in range(0, int(height), GRID):
        draw.line([(0, y), (width, y)], fill=(225, 228, 235))
    return np.asarray(image)


def canvas_value(image: Any, boxes) -> dict[str, Any]:
    """An annotator value: an image (array or path) and (label, x0, y0, x1, y1) boxes."""
    return {
        "image": image,
        "boxes": [
            {"label": label, "xmin": x0, "ymin": y0, "xmax": x1, "ymax": y1}
            for label, x0, y0, x1, y1 in boxes
        ],
    }


def _image_hw(image, default: tuple[int, int]) -> tuple[int, int]:
    if image is None:
        return default
    if isinstance(image, (str, Path)):
        with Image.open(image) as opened:
            return opened.height, opened.width
    return tuple(np.asarray(image).shape[:2])


def canvas_boxes(canvas: dict | None, width: int, height: int) -> list[PhraseBox]:
    """The drawn boxes in pixels of the output: the canvas may be another size than the output
    (an example, or sliders moved since drawing), so boxes scale with it."""
    if not canvas:
        return []
    canvas_h, canvas_w = _image_hw(canvas.get("image"), (height, width))
    sx, sy = width / canvas_w, height / canvas_h
    return [
        PhraseBox(
            str(box.get("label") or ""),
            box["xmin"] * sx,
            box["ymin"] * sy,
            box["xmax"] * sx,
            box["ymax"] * sy,
        )
        for box in canvas.get("boxes") or []
    ]


def resized_canvas(canvas: dict | None, width: int, height: int) -> dict[str, Any]:
    """A blank canvas of the new output size, carrying the boxes over, scaled."""
    boxes = canvas_boxes(canvas, int(width), int(height))
    return canvas_value(
        blank_canvas(int(width), int(height)),
        [(b.phrase, round(b.x0), round(b.y0), round(b.x1), round(b.y1)) for b in boxes],
    )
