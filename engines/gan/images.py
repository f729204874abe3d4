"""Generator output to pictures: tensors in [-1, 1] to PIL images and labelled-free grids."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from PIL import Image


def to_pil(images: torch.Tensor, max_side: int | None = None) -> list[Image.Image]:
    """A batch (N, 3, H, W) in [-1, 1] as RGB images, shrunk to `max_side` if larger."""
    images = images.detach().float()
    if max_side is not None and images.shape[-1] > max_side:
        images = F.interpolate(images, size=(max_side, max_side), mode="area")
    pixels = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return [Image.fromarray(p.permute(1, 2, 0).cpu().numpy()) for p in pixels]


def grid(rows: list[list[Image.Image]], gap: int = 4) -> Image.Image:
    """Rows of equally sized tiles pasted onto a white canvas."""
    width, height = rows[0][0].size
    columns = max(len(row) for row in rows)
    canvas = Image.new(
        "RGB",
        (columns * width + (columns - 1) * gap, len(rows) * height + (len(rows) - 1) * gap),
        "white",
    )
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            canvas.paste(tile, (c * (width + gap), r * (height + gap)))
    return canvas
