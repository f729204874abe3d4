"""What a `.nerf` file may say about itself, checked before anything is built from it: every
header value within the range a fit can write (with headroom), no NaN or infinity, view
indices inside the cameras the file holds; and its tensor table (names, dtypes, shapes, byte
ranges) equal to what a model of that header holds (worked out from models with 1- and 2-cell
fields, so nothing the size of the header's grid is allocated before its tensors are found in
the file). A 1.4 MB file can then no longer make a render ask for 40-80 GB.

Every problem is an InputError naming the file."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from ..errors import InputError
from .capture_images import MAX_VIEWS
from .field import FieldConfig
from .model import VAE_FACTOR, NerfConfig
from .ray_space import KINDS, RaySpace
from .refine import RefinerConfig

MAX_HEADER_BYTES = 8 << 20  # the JSON table at the file's start: a fit's is a few KB
MAX_SIDE = 1024  # width and height: the working resolution's range (requests.py)
MAX_SAMPLES = 1024  # per ray (requests allow 512)
MAX_GRID = 512  # field grid per axis (requests allow 320)
MAX_OCCUPANCY = 256  # occupancy grid per axis (fits write 64)
FIELD_LIMITS = {  # FieldConfig field -> (low, high); fits write the defaults
    "grid": (1, MAX_GRID),
    "grid_start": (1, MAX_GRID),
    "density_rank": (1, 96),
    "appearance_rank": (1, 96),
    "feature_dim": (1, 256),
    "hidden": (1, 512),
    "latent_channels": (4, 4),  # Stable Diffusion's VAE latent
    "direction_frequencies": (0, 8),
}
REFINER_LIMITS = {"channels": (1, 256), "blocks": (1, 8), "groups": (1, 256), "heads": (1, 64)}
DTYPES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "U8": 1, "I8": 1, "I32": 4, "I64": 8, "BOOL": 1}


@dataclass
class CheckedHeader:
    config: NerfConfig
    grid: int
    original_grid: int | None  # set when the file keeps the fitted field beside the edited one
    train: list[int]
    test: list[int]
    occupancy_warmed: bool
    original_occupancy_warmed: bool
    models: dict[str, Any]
    source: dict[str, Any]
    edits: list[Any]


def integer(source: dict, key: str, low: int, high: int, name: str, where: str = "") -> int:
    value = source.get(key) if isinstance(source, dict) else None
    label = f"{where}{key}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{name} is damaged: {label} must be an integer, got {_shown(value)}.")
    if not low <= value <= high:
        raise InputError(f"{name}: {label} is {_shown(value)}; a scene file holds {low} to {high}.")
    return value


def finite(value: Any, label: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{name} is damaged: {label} must be a number, got {_shown(value)}.")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise InputError(f"{name} is damaged: {label} is not a finite number.")
    return number


def _shown(value: Any) -> str:
    return repr(value)[:40]


def _flag(meta: dict, key: str, name: str) -> bool:
    value = meta.get(key, False)
    if not isinstance(value, bool):
        raise InputError(f"{name} is damaged: {key} must be true or false.")
    return value


def _of_type(meta: dict, key: str, kind: type, name: str):
    value = meta.get(key, kind())
    if not isinstance(value, kind):
        raise InputError(f"{name} is damaged: {key} must be a JSON {kind.__name__}.")
    return value


def _space(data: Any, name: str) -> RaySpace:
    data = {} if data is None else data
    if not isinstance(data, dict) or data.get("kind", KINDS[0]) not in KINDS:
        raise InputError(f"{name} is damaged: space must be one of {', '.join(KINDS)}.")
    numbers = {
        k: finite(data[k], f"space.{k}", name)
        for k in ("focal", "width", "height", "near", "start")
        if k in data
    }
    return RaySpace(kind=data.get("kind", KINDS[0]), **numbers)


def _config(section: Any, limits: dict, kind, name: str, key: str):
    if not isinstance(section, dict) or set(section) - set(limits):
        raise InputError(f"{name} is damaged: {key} must hold {', '.join(limits)}.")
    values = {k: integer(section, k, *limits[k], name, f"{key}.") for k in section}
    return kind(**values)


def check_meta(meta: dict, name: str) -> CheckedHeader:
    """The header's values, each checked; InputError naming the first out of range."""
    width = integer(meta, "width", VAE_FACTOR, MAX_SIDE, name)
    height = integer(meta, "height", VAE_FACTOR, MAX_SIDE, name)
    if width % VAE_FACTOR or height % VAE_FACTOR:
        raise InputError(
            f"{name}: the views are {width}x{height}; scene files hold multiples of 8."
        )
    background = meta.get("background")
    if not isinstance(background, list) or len(background) != 3:
        raise InputError(f"{name} is damaged: background must be 3 numbers.")
    colour = tuple(finite(v, "background", name) for v in background)
    if not all(0 <= v <= 1 for v in colour):
        raise InputError(f"{name} is damaged: background values must be 0 to 1.")
    field = _config(meta.get("field"), FIELD_LIMITS, FieldConfig, name, "field")
    refiner = _config(meta.get("refiner"), REFINER_LIMITS, RefinerConfig, name, "refiner")
    if refiner.channels % refiner.groups or refiner.channels % refiner.heads:
        raise InputError(f"{name} is damaged: refiner.channels must divide by groups and heads.")
    config = NerfConfig(
        width=width,
        height=height,
        samples=integer(meta, "samples", 1, MAX_SAMPLES, name),
        background=colour,
        field=field,
        refiner=refiner,
        occupancy_size=integer(meta, "occupancy_size", 1, MAX_OCCUPANCY, name),
        space=_space(meta.get("space"), name),
    )
    original = meta.get("original_grid")
    return CheckedHeader(
        config=config,
        grid=integer(meta, "grid", 1, MAX_GRID, name),
        original_grid=None
        if original is None
        else integer(meta, "original_grid", 1, MAX_GRID, name),
        train=_views(meta.get("train"), "train", name),
        test=_views(meta.get("test"), "test", name),
        occupancy_warmed=_flag(meta, "occupancy_warmed", name),
        original_occupancy_warmed=_flag(meta, "original_occupancy_warmed", name),
        models=_of_type(meta, "models", dict, name),
        source=_of_type(meta, "source", dict, name),
        edits=_of_type(meta, "edits", list, name),
    )


def _views(value: Any, key: str, name: str) -> list[int]:
    if not isinstance(value, list) or len(value) > MAX_VIEWS:
        raise InputError(f"{name} is damaged: {key} must be a list of at most {MAX_VIEWS} views.")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise InputError(f"{name} is damaged: {key} must list view numbers.")
    return value


def check_views(header: CheckedHeader, count: int, name: str) -> None:
    """Train and test views are cameras the file holds; at least one trained on."""
    if not header.train:
        raise InputError(f"{name} is damaged: it lists no training views.")
    for key, views in (("train", header.train), ("test", header.test)):
        outside = [v for v in views if not 0 <= v < count]
        if outside:
            raise InputError(
                f"{name} is damaged: {key} view {outside[0]} is not one of its {count} cameras."
            )


def _state_shapes(config: NerfConfig, size: int) -> dict[str, tuple[int, ...]]:
    """The state dict's shapes of a model of `config` whose field is `size` per axis (1 or 2:
    a few KB whatever the header's grid)."""
    from .model import LatentNerf

    small = replace(config, field=replace(config.field, grid_start=size))
    return {k: tuple(v.shape) for k, v in LatentNerf(small, None, [], []).state_dict().items()}


def expected_tensors(header: CheckedHeader, views: int) -> dict[str, tuple[str, tuple[int, ...]]]:
    """name -> (safetensors dtype, shape) of every tensor a file with this header holds. The
    model is built with 1- and 2-cell fields and the axes that follow the field's size are
    scaled to the header's grid, so a huge grid is never allocated to find its shapes."""
    one, two = _state_shapes(header.config, 1), _state_shapes(header.config, 2)

    def at(key: str, size: int) -> tuple[int, ...]:
        return tuple(
            size if (a, b) == (1, 2) else a for a, b in zip(one[key], two[key], strict=True)
        )

    tensors = {key: ("F32", at(key, header.grid)) for key in one}
    if header.original_grid is not None:
        for key in (k for k in one if k.startswith("field.")):
            tensors[f"original_{key}"] = ("F32", at(key, header.original_grid))
    cells = (header.config.occupancy_size,) * 3
    tensors["occupancy.cells"] = ("U8", cells)
    if header.original_grid is not None:
        tensors["original_occupancy.cells"] = ("U8", cells)
    tensors["cameras.c2w"] = ("F32", (views, 3, 4))
    tensors["cameras.intrinsics"] = ("F32", (views, 4))
    return tensors


def camera_count(table: dict, name: str) -> int:
    entry = table.get("cameras.c2w")
    shape = entry.get("shape") if isinstance(entry, dict) else None
    if not isinstance(shape, list) or len(shape) != 3 or not isinstance(shape[0], int):
        raise InputError(f"{name} is damaged: it holds no cameras.")
    if not 1 <= shape[0] <= MAX_VIEWS:
        raise InputError(f"{name}: it holds {shape[0]} cameras; scene files hold 1 to {MAX_VIEWS}.")
    return shape[0]


def check_table(table: dict, expected: dict, data_bytes: int, name: str) -> None:
    """Every tensor of the safetensors table is one the header implies, with its dtype and
    shape, and its bytes inside the file; none is missing."""
    entries = {k: v for k, v in table.items() if k != "__metadata__"}
    missing = sorted(set(expected) - set(entries))
    if missing:
        raise InputError(f"{name} is damaged: tensor {missing[0]} is missing.")
    for key, entry in entries.items():
        if key not in expected:
            raise InputError(f"{name} is damaged: tensor {key[:60]!r} is not part of a scene.")
        dtype, shape = expected[key]
        if not isinstance(entry, dict) or entry.get("dtype") != dtype:
            raise InputError(f"{name} is damaged: tensor {key} must be {dtype}.")
        if entry.get("shape") != list(shape):
            raise InputError(
                f"{name} is damaged: tensor {key} has shape {_shown(entry.get('shape'))}; "
                f"its header says {list(shape)}."
            )
        offsets = entry.get("data_offsets")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_bytes
            or offsets[1] - offsets[0] != DTYPES[dtype] * math.prod(shape)
        ):
            raise InputError(f"{name} is truncated or damaged: tensor {key}'s bytes are not in it.")
