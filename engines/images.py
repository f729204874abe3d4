"""Reading a user's image safely: its size is read from the header and checked against a limit
before any pixel is decoded, and messages name the file, never the server's folders."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

from .errors import InputError


def open_image(source: Any, max_side: int, what: str = "image"):
    """A decoded PIL image from a path or bytes, refused before decoding when a side is over
    `max_side` (or the file is not an image Pillow reads)."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(source, (bytes, bytearray)):
        stream, name = io.BytesIO(source), f"The uploaded {what}"
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise InputError(f"The {what} file {path.name} does not exist.")
        stream, name = path, path.name
    else:
        raise InputError(f"Cannot read an {what} from a {type(source).__name__}.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(stream) as image:
                check_side(image.width, image.height, max_side, name)
                image.load()
                return image.copy()
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise InputError(
            f"{name} is too large to open; the limit is {max_side} px a side."
        ) from err
    except UnidentifiedImageError as err:
        raise InputError(f"{name} is not an image (PNG, JPEG, WebP ...) that can be read.") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise InputError(f"{name} is a damaged or truncated image.") from err


def check_side(width: int, height: int, max_side: int, name: str = "The image") -> None:
    if width <= 0 or height <= 0:
        raise InputError(f"{name} is empty (zero width or height).")
    if max(width, height) > max_side:
        raise InputError(
            f"{name} is {width}x{height}; images up to {max_side} px a side are accepted. "
            "Downscale it first."
        )
