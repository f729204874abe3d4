"""The layout canvas (gradio_image_annotation's value): a grid to draw on, shown at least
DISPLAY_PX on its long side however small the output (so boxes and labels stay legible), and
its boxes as PhraseBoxes in pixels of the output, whatever size the canvas was drawn at."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from engines.layout.requests import MAX_BOXES, SIZE_RANGE, PhraseBox

GRID = 64
"""Grid spacing in output pixels."""
DISPLAY_PX = 512
"""The canvas's long side is drawn at least this large."""


def display_scale(width: int, height: int) -> float:
    """How much larger than the output the canvas is drawn (1 from DISPLAY_PX up)."""
    return max(1.0, DISPLAY_PX / max(int(width), int(height)))


def blank_canvas(width: int, height: int) -> np.ndarray:
    """A light grid to draw on, of the output's shape, one line every GRID output pixels."""
    scale = display_scale(width, height)
    w, h = round(int(width) * scale), round(int(height) * scale)
    image = Image.new("RGB", (w, h), (250, 250, 252))
    draw = ImageDraw.Draw(image)
    step = GRID * scale
    for x in np.arange(0, w, step):
        draw.line([(x, 0), (x, h)], fill=(225, 228, 235))
    for y in np.arange(0, h, step):
        draw.line([(0, y), (w, y)], fill=(225, 228, 235))
    return np.asarray(image)


def canvas_value(image: Any, boxes) -> dict[str, Any]:
    """An annotator value: an image (array or path) and (label, x0, y0, x1, y1) boxes in the
    image's pixels."""
    return {
        "image": image,
        "boxes": [
            {"label": label, "xmin": x0, "ymin": y0, "xmax": x1, "ymax": y1}
            for label, x0, y0, x1, y1 in boxes
        ],
    }


def canvas_for(width: int, height: int, boxes=()) -> dict[str, Any]:
    """A blank canvas for a width x height output, with (label, x0, y0, x1, y1) boxes given in
    output pixels, drawn at the canvas's display scale."""
    scale = display_scale(width, height)
    scaled = [(label, *(round(c * scale) for c in coords)) for label, *coords in boxes]
    return canvas_value(blank_canvas(width, height), scaled)


def _image_hw(image, default: tuple[int, int]) -> tuple[int, int]:
    if image is None:
        return default
    if isinstance(image, (str, Path)):
        with Image.open(image) as opened:
            return opened.height, opened.width
    return tuple(np.asarray(image).shape[:2])


def canvas_boxes(canvas: dict | None, width: int, height: int) -> list[PhraseBox]:
    """The drawn boxes in pixels of the output: the canvas may be another size than the output
    (drawn larger, an example, or sliders moved since drawing), so boxes scale with it."""
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


def resized_canvas(canvas: dict | None, width: Any, height: Any) -> Any:
    """A blank canvas for the new output size, carrying the boxes over, scaled (the canvas as
    it is while a typed size is not one the request takes: Generate says why)."""
    if not all(_usable_size(v) for v in (width, height)):
        return canvas
    boxes = canvas_boxes(canvas, int(width), int(height))
    return canvas_for(int(width), int(height), [(b.phrase, *b.coords()) for b in boxes])


def _usable_size(value: Any) -> bool:
    low, high = SIZE_RANGE
    return isinstance(value, (int, float)) and float(value).is_integer() and low <= value <= high


def too_many_boxes(canvas: dict | None) -> str:
    """A warning when more boxes are drawn than a request takes ("" when they fit)."""
    count = len((canvas or {}).get("boxes") or [])
    if count <= MAX_BOXES:
        return ""
    return f"{count} boxes drawn; at most {MAX_BOXES} are used. Remove {count - MAX_BOXES}."


def preview(canvas: dict) -> Image.Image:
    """The canvas image with its boxes and labels drawn in (for example thumbnails, which
    show only the image)."""
    from engines.layout.render import draw_boxes

    image = canvas["image"]
    picture = Image.open(image).convert("RGB") if isinstance(image, (str, Path)) else image
    if not isinstance(picture, Image.Image):
        picture = Image.fromarray(np.asarray(picture))
    boxes = canvas_boxes(canvas, picture.width, picture.height)
    return draw_boxes(picture, boxes)


def boxes_in_example_thumbnails(canvas):
    """`canvas` (an image_annotator), its example thumbnails drawn with their boxes and labels
    instead of the bare image. (An instance attribute, not a subclass: Gradio writes a .pyi file
    beside every component class it sees defined.)"""
    from gradio.processing_utils import save_img_array_to_cache

    show_image = canvas.process_example

    def process_example(value: dict | None):
        if not value or not value.get("boxes"):
            return show_image(value)
        drawn = save_img_array_to_cache(
            np.asarray(preview(value)), canvas.GRADIO_CACHE, format="png"
        )
        return show_image({**value, "image": drawn})

    canvas.process_example = process_example
    return canvas
