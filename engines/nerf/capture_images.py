"""A capture's images at the working resolution: the downscaled folder to read (`images_2/`,
`images_4/`, `images_8/`), per-view intrinsics scaled with each image, lens distortion removed
(OpenCV), and one working size for every view, kept as uint8 (a quarter of float32's memory)
until a batch needs floats (`unit_float`).

Every problem is an InputError with one line naming the file; the working set (views x
working pixels) is capped from the images' headers, before anything is decoded."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

MIN_VIEWS = 8
MAX_VIEWS = 1000
MAX_IMAGE_SIDE = 4096
MAX_WORKING_PIXELS = 1 << 28  # views x width x height: 768 MiB as uint8 (340 views at 1024x768)
DOWNSCALE_FACTORS = (8, 4, 2)  # the folders LLFF, mip-NeRF 360 and nerfstudio write
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
ASPECT_TOLERANCE = 0.01  # views whose aspect ratios differ by more are refused


@dataclass
class ViewFile:
    """One view's image and its camera as the capture gives them."""

    path: Path  # the full-resolution image
    width: int  # the image size the intrinsics are given for
    height: int
    fx: float
    fy: float
    cx: float  # pixel centres at i + 0.5
    cy: float
    distortion: tuple[float, ...] | None = None  # OpenCV's k1, k2, p1, p2[, k3]

    @property
    def intrinsics(self) -> np.ndarray:
        return np.array([self.fx, self.fy, self.cx, self.cy], dtype=np.float64)


def working_size(width: int, height: int, resolution: int) -> tuple[int, int]:
    """(w, h) with the longer side `resolution` and both sides multiples of 8 (the VAE's
    downsampling), the aspect ratio kept as far as that allows."""
    scale = resolution / max(width, height)
    return (
        max(8, int(round(width * scale / 8)) * 8),
        max(8, int(round(height * scale / 8)) * 8),
    )


def image_size(path: Path) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(f"{path.name} is not an image.") from err


def downscaled_path(path: Path, factor: int) -> Path | None:
    """The same image in the `images_<factor>/` folder beside the `images/` folder holding it
    (any image suffix: LLFF writes its downscaled sets as PNG), or None."""
    parents = [p for p in path.parents if p.name == "images"]
    if not parents:
        return None
    folder = parents[0]
    relative = path.relative_to(folder)
    candidate = folder.with_name(f"images_{factor}") / relative
    if candidate.is_file() and not candidate.is_symlink():
        return candidate
    for suffix in IMAGE_SUFFIXES:
        other = candidate.with_suffix(suffix)
        if other.is_file() and not other.is_symlink():
            return other
    return None


def choose_files(views: list[ViewFile], resolution: int) -> list[Path]:
    """The files to read: the smallest downscaled set whose images are at least `resolution`
    on their longer side, else the largest set under the size cap."""
    options = {1: [v.path for v in views]}
    for factor in DOWNSCALE_FACTORS:
        paths = [downscaled_path(v.path, factor) for v in views]
        if all(p is not None for p in paths):
            options[factor] = paths
    sides = {f: max(image_size(paths[0])) for f, paths in options.items()}
    allowed = {f: s for f, s in sides.items() if s <= MAX_IMAGE_SIDE}
    if not allowed:
        first = options[1][0]
        width, height = image_size(first)
        raise InputError(
            f"{first.name} is {width}x{height}; images over {MAX_IMAGE_SIDE} px are refused "
            "(add images_2/, images_4/ or images_8/ folders of downscaled copies)."
        )
    big_enough = [f for f, s in allowed.items() if s >= resolution]
    if big_enough:
        chosen = min(big_enough, key=lambda f: allowed[f])
    else:
        chosen = max(allowed, key=lambda f: allowed[f])
    return options[chosen]


def check_sizes(paths: list[Path]) -> list[tuple[int, int]]:
    """Every file's size; refused over the cap or when aspect ratios differ (sizes named)."""
    sizes = [image_size(p) for p in paths]
    first = sizes[0]
    for path, (width, height) in zip(paths, sizes, strict=True):
        if max(width, height) > MAX_IMAGE_SIDE:
            raise InputError(
                f"{path.name} is {width}x{height}; images over {MAX_IMAGE_SIDE} px are refused."
            )
        ratio = (width / height) / (first[0] / first[1])
        if abs(ratio - 1) > ASPECT_TOLERANCE:
            raise InputError(
                f"The images have mixed shapes ({paths[0].name} is {first[0]}x{first[1]}, "
                f"{path.name} is {width}x{height}); views of one aspect ratio are read."
            )
    return sizes


def load_image(
    path: Path, background: tuple[float, float, float], size: tuple[int, int] | None = None
) -> np.ndarray:
    """(h, w, 3) float32 in [0, 1], resized (Lanczos) to `size` when given, then laid on
    `background` if it has alpha."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert("RGBA") if "A" in image.getbands() else image.convert("RGB")
            if size is not None and image.size != size:
                image = image.resize(size, Image.Resampling.LANCZOS)
            pixels = np.asarray(image, dtype=np.float32) / 255.0
    except OSError as err:
        raise InputError(f"{path.name} is not a readable image: {err}.") from err
    if pixels.shape[-1] == 4:
        alpha = pixels[..., 3:]
        pixels = pixels[..., :3] * alpha + np.asarray(background, dtype=np.float32) * (1 - alpha)
    return pixels


def resize(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Lanczos resize of a float image to `size` (w, h), per channel (PIL's 'F' mode)."""
    from PIL import Image

    if pixels.shape[1] == size[0] and pixels.shape[0] == size[1]:
        return pixels
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(pixels[..., c])).resize(
                size, Image.Resampling.LANCZOS
            )
        )
        for c in range(pixels.shape[-1])
    ]
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0)


def unit_float(images):
    """A batch of views (uint8 0-255, as `read_views` keeps them, or floats already in [0, 1])
    as float32 in [0, 1]: numpy arrays and torch tensors alike."""
    if isinstance(images, np.ndarray):
        return images.astype(np.float32) / 255 if images.dtype == np.uint8 else images
    import torch

    return images.float() / 255 if images.dtype == torch.uint8 else images


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    return (np.clip(pixels, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def check_working_set(count: int, width: int, height: int, resolution: int) -> None:
    pixels = count * width * height
    if pixels > MAX_WORKING_PIXELS:
        raise InputError(
            f"{count} views at {width}x{height} are {pixels / 1e6:.0f} million pixels to hold; "
            f"at most {MAX_WORKING_PIXELS / 1e6:.0f} million are read (views x working pixels). "
            f"Use fewer views or a working resolution under {resolution} px."
        )


def allocate(shape: tuple[int, ...], dtype) -> np.ndarray:
    """np.empty, with a failed allocation refused naming the size."""
    try:
        return np.empty(shape, dtype=dtype)
    except MemoryError:
        size = np.dtype(dtype).itemsize * math.prod(shape)
        raise InputError(
            f"The views need {size / 2**30:.1f} GiB; that is too large for this machine."
        ) from None


def read_views(
    views: list[ViewFile], resolution: int, background: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W, 3) uint8 images and (N, 4) intrinsics at the working resolution: each view
    read from the chosen folder, its intrinsics scaled to that file, undistorted when it has
    distortion, then resized to the working size of the first view. The working set is
    checked from the headers before any image is decoded."""
    from .undistort import undistort

    paths = choose_files(views, resolution)
    sizes = check_sizes(paths)
    width, height = working_size(*sizes[0], resolution)
    check_working_set(len(views), width, height, resolution)
    images = allocate((len(views), height, width, 3), np.uint8)
    intrinsics = np.empty((len(views), 4), dtype=np.float64)
    for index, (view, path, size) in enumerate(zip(views, paths, sizes, strict=True)):
        if view.width <= 0 or view.height <= 0:
            raise InputError(f"{view.path.name}: its camera is {view.width}x{view.height} px.")
        scale = np.array([size[0] / view.width, size[1] / view.height] * 2)
        k = view.intrinsics * scale
        if view.distortion is not None and any(view.distortion):
            try:
                pixels, k = undistort(load_image(path, background), k, view.distortion)
            except ValueError as err:
                raise InputError(f"{view.path.name}: {err}; refused.") from err
            images[index] = to_uint8(resize(pixels, (width, height)))
        else:
            images[index] = to_uint8(load_image(path, background, (width, height)))
        intrinsics[index] = k * np.array([width / size[0], height / size[1]] * 2)
    return images, intrinsics
