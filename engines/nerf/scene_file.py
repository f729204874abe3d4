"""The scene file (`.nerf`): the fitted field as safetensors, with a JSON header in the
safetensors metadata: format and version, grid sizes and box, camera convention, working
resolution, the models it was fitted against, and (after an edit) the edit's prompts.

After an edit it also holds the frozen fitted field and occupancy grid the RGB head renders
(`original_field.*`, `original_occupancy.cells`), but only when they differ from the live ones:
an edit that changed nothing saves the same bytes as the file it started from.

Edit and Render load it without refitting. A foreign, truncated, damaged or newer-version file
is refused with one line saying which; every header value and tensor shape is checked before
anything is built from it (scene_header.py)."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError
from .cameras import OPENGL, Cameras
from .model import LatentNerf
from .scene_header import (
    MAX_HEADER_BYTES,
    camera_count,
    check_meta,
    check_table,
    check_views,
    expected_tensors,
)

FORMAT = "zsstudio-nerf"
VERSION = 1
METADATA_KEY = "zsstudio_nerf"
SUFFIX = ".nerf"
ORIGINAL = "original_field."


@dataclass
class SceneHeader:
    """What a scene file says about itself besides its tensors."""

    models: dict[str, dict] = field(default_factory=dict)  # registry entries it was fitted on
    source: dict[str, Any] = field(default_factory=dict)  # scene format, convention, views
    edits: list[dict[str, Any]] = field(default_factory=list)  # prompts and modes applied


def scene_bytes(model: LatentNerf, header: SceneHeader) -> bytes:
    from safetensors.torch import save

    config = model.config
    keep_original = model.original_differs()
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "box": [[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]],
        "grid": model.field.size,
        "field": config.field.to_dict(),
        "refiner": config.refiner.to_dict(),
        "samples": config.samples,
        "camera_convention": OPENGL,
        "width": config.width,
        "height": config.height,
        "latent_size": list(config.latent_size),
        "background": list(config.background),
        "occupancy_size": config.occupancy_size,
        "space": config.space.to_dict(),
        "occupancy_warmed": model.occupancy.warmed,
        "train": model.train_views,
        "test": model.test_views,
        "models": header.models,
        "source": header.source,
        "edits": header.edits,
    }
    if keep_original:
        meta["original_grid"] = model.original_field.size
        meta["original_occupancy_warmed"] = model.original_occupancy.warmed
    tensors = {
        name: t.detach().cpu().contiguous()
        for name, t in model.state_dict().items()
        if keep_original or not name.startswith(ORIGINAL)
    }
    if keep_original:
        cells = model.original_occupancy.cells.to(torch.uint8).cpu().contiguous()
        tensors["original_occupancy.cells"] = cells
    c2w, intrinsics = model.camera_arrays()
    tensors["cameras.c2w"] = torch.from_numpy(c2w).contiguous()
    tensors["cameras.intrinsics"] = torch.from_numpy(intrinsics).contiguous()
    tensors["occupancy.cells"] = model.occupancy.cells.to(torch.uint8).cpu().contiguous()
    return save(tensors, metadata={METADATA_KEY: json.dumps(meta, sort_keys=True)})


def read_header(data: bytes, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The scene's JSON header and the safetensors tensor table, or InputError: foreign,
    truncated, newer or damaged files."""
    if len(data) < 8:
        raise InputError(f"{name} is truncated or empty: it is not a scene file.")
    (length,) = struct.unpack("<Q", data[:8])
    if length > len(data) - 8:
        raise InputError(f"{name} is truncated: its header runs past the end of the file.")
    if length > MAX_HEADER_BYTES:
        raise InputError(
            f"{name}: its header is {length >> 20} MB; a scene file's is at most "
            f"{MAX_HEADER_BYTES >> 20} MB."
        )
    foreign = f"{name} is not a Zero-Shot Studio NeRF scene file."
    try:
        table = json.loads(data[8 : 8 + length].decode("utf-8"))
        meta = json.loads(table["__metadata__"][METADATA_KEY])
    except RecursionError:
        raise InputError(f"{name} is damaged: its header is nested too deeply.") from None
    except (ValueError, KeyError, TypeError, IndexError) as err:  # ValueError: JSON, UTF-8
        raise InputError(foreign) from err
    if not isinstance(table, dict) or not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(foreign)
    version = meta.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InputError(
            f"{name} says it is scene format version {repr(version)[:40]}, which is not a "
            f"version number: the file is damaged (this app reads version {VERSION})."
        )
    if version > VERSION:
        raise InputError(
            f"{name} is scene format version {version}; this version of Zero-Shot Studio "
            f"reads version {VERSION}. Update Zero-Shot Studio to open it."
        )
    return meta, table


def load_scene_bytes(data: bytes, name: str = "the scene file") -> tuple[LatentNerf, SceneHeader]:
    """The model and header of a scene file's bytes; every header value and tensor shape is
    checked before the model is built (scene_header.py)."""
    meta, table = read_header(data, name)
    header = check_meta(meta, name)
    views = camera_count(table, name)
    check_views(header, views, name)
    length = struct.unpack("<Q", data[:8])[0]
    check_table(table, expected_tensors(header, views), len(data) - 8 - length, name)
    try:
        return _build(data, header, name), SceneHeader(header.models, header.source, header.edits)
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001 - safetensors' own error class is not importable
        first = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        if isinstance(err, MemoryError) or "allocate" in first or "out of memory" in first:
            raise InputError(
                f"{name} ({len(data) / 2**20:.0f} MB) needs more memory than is free: it is "
                "too large for this machine."
            ) from None
        raise InputError(f"{name} is damaged: {first}.") from err


def _build(data: bytes, header, name: str) -> LatentNerf:
    from safetensors.torch import load

    from .scenes import check_poses

    tensors = load(data)
    for key, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise InputError(f"{name} is damaged: tensor {key} holds NaN or infinite values.")
    c2w = tensors.pop("cameras.c2w").numpy()
    intrinsics = tensors.pop("cameras.intrinsics").numpy()
    check_poses(c2w.astype("float64"), name)
    if (intrinsics[:, :2] <= 0).any():
        raise InputError(f"{name} is damaged: a camera's focal length is not positive.")
    config = header.config
    cameras = Cameras.from_arrays(c2w, intrinsics, config.width, config.height)
    cells = tensors.pop("occupancy.cells").bool()
    original_cells = tensors.pop("original_occupancy.cells", None)
    model = LatentNerf(config, cameras, header.train, header.test)
    if model.field.size != header.grid:
        model.field.upsample(header.grid)
    if original_cells is not None:
        model.keep_original()
        if model.original_field.size != header.original_grid:
            model.original_field.upsample(header.original_grid)
        model.original_field.requires_grad_(False)
        model.original_occupancy.cells = original_cells.bool()
        model.original_occupancy.warmed = header.original_occupancy_warmed
    model.load_state_dict(tensors, strict=True)
    model.occupancy.cells = cells
    model.occupancy.warmed = header.occupancy_warmed
    return model


def load_scene_file(path: str | Path) -> tuple[LatentNerf, SceneHeader]:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as err:
        raise InputError(f"The scene file {path} does not exist.") from err
    except OSError as err:
        raise InputError(f"The scene file {path} cannot be read: {err}.") from err
    return load_scene_bytes(data, path.name)
