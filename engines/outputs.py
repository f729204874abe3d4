"""Writing output files: atomically (`engines.files`), folders created, images as PNG."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from .files import atomic_write_bytes


def write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` to `path` all or nothing, creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(path, data)


def png_bytes(image: Any) -> bytes:
    """A PIL image or an HxWx3 uint8 array as PNG bytes."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
