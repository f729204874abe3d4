"""Reading the user's image into an RGB uint8 array, with the checks a codec needs."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from ..images import open_image

MAX_SIDE = 2048
"""Larger images are refused, not silently downscaled: the file must decode to the image given."""


def load_rgb(source: Any) -> np.ndarray:
    """An (H, W, 3) uint8 array from a path, bytes, PIL image or array. Alpha is dropped."""
    from PIL import Image

    if source is None:
        raise InputError("No image given: upload a photo (PNG, JPEG, WebP ...).")
    if isinstance(source, np.ndarray):
        return _check_size(_array_to_rgb(source))
    if isinstance(source, Image.Image):
        return _check_size(_pil_to_rgb(source))
    return _check_size(_pil_to_rgb(open_image(source, MAX_SIDE, "image")))


def _pil_to_rgb(image) -> np.ndarray:
    if image.width == 0 or image.height == 0:
        raise InputError("The image is empty (zero width or height).")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda value: value / 256).convert("L")
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def _array_to_rgb(array: np.ndarray) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise InputError(f"An image array must be HxW, HxWx3 or HxWx4, not {array.shape}.")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError("The image is empty (zero width or height).")
    array = array[..., :3]
    if array.dtype != np.uint8:
        if np.issubdtype(array.dtype, np.floating) and array.max(initial=0) <= 1.0:
            array = array * 255.0
        array = np.clip(np.round(array), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(array)


def _check_size(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    if height == 0 or width == 0:
        raise InputError("The image is empty (zero width or height).")
    if max(height, width) > MAX_SIDE:
        raise InputError(
            f"The image is {width}x{height}; images up to {MAX_SIDE} px on a side are accepted. "
            "Downscale it first (the decoded file must match the image you give)."
        )
    return image


def pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """Pad bottom and right by repeating the edge, to a size divisible by `multiple`."""
    height, width = image.shape[:2]
    pad_h, pad_w = -height % multiple, -width % multiple
    if not pad_h and not pad_w:
        return image
    return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
