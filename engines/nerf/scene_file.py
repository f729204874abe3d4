"""The scene file (`.nerf`): the fitted field as safetensors, with a JSON header in the
safetensors metadata: format and version, grid sizes and box, camera convention, working
resolution, the models it was fitted against, and (after an edit) the edit's prompts.

After an edit it also holds the frozen fitted field and occupancy grid the RGB head renders
(`original_field.*`, `original_occupancy.cells`), but only when they differ from the live ones:
an edit that changed nothing saves the same bytes as the file it started from.

Edit and Render load it without refitting. A foreign, truncated or newer-version file is
refused with one line saying which."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError
from .cameras import OPENGL, Cameras
from .field import FieldConfig
from .model import LatentNerf, NerfConfig
from .ray_space import RaySpace
from .refine import RefinerConfig

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


def read_header(data: bytes, name: str) -> dict[str, Any]:
    """The scene's JSON header, or InputError: foreign, truncated or newer files."""
    if len(data) < 8:
        raise InputError(f"{name} is truncated or empty: it is not a scene file.")
    (length,) = struct.unpack("<Q", data[:8])
    if length > len(data) - 8:
        raise InputError(f"{name} is truncated: its header runs past the end of the file.")
    try:
        table = json.loads(data[8 : 8 + length].decode("utf-8"))
        meta = json.loads(table["__metadata__"][METADATA_KEY])
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise InputError(f"{name} is not a Zero-Shot Studio NeRF scene file.") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(f"{name} is not a Zero-Shot Studio NeRF scene file.")
    version = meta.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise InputError(
            f"{name} is scene format version {version}; this version of Zero-Shot Studio "
            f"reads version {VERSION}. Update Zero-Shot Studio to open it."
        )
    ends = [
        entry["data_offsets"][1]
        for entry in table.values()
        if isinstance(entry, dict) and "data_offsets" in entry
    ]
    if 8 + length + max(ends, default=0) > len(data):
        raise InputError(f"{name} is truncated: its tensors run past the end of the file.")
    return meta


def load_scene_bytes(data: bytes, name: str = "the scene file") -> tuple[LatentNerf, SceneHeader]:
    from safetensors.torch import load

    meta = read_header(data, name)
    try:
        tensors = load(data)
        config = NerfConfig(
            width=int(meta["width"]),
            height=int(meta["height"]),
            samples=int(meta["samples"]),
            background=tuple(meta["background"]),
            field=FieldConfig(**meta["field"]),
            refiner=RefinerConfig(**meta["refiner"]),
            occupancy_size=int(meta["occupancy_size"]),
            space=RaySpace.from_dict(meta.get("space")),  # files before ray spaces: box
        )
        cameras = Cameras.from_arrays(
            tensors.pop("cameras.c2w").numpy(),
            tensors.pop("cameras.intrinsics").numpy(),
            config.width,
            config.height,
        )
        cells = tensors.pop("occupancy.cells").bool()
        original_cells = tensors.pop("original_occupancy.cells", None)
        model = LatentNerf(config, cameras, meta["train"], meta["test"])
        if model.field.size != int(meta["grid"]):
            model.field.upsample(int(meta["grid"]))
        if original_cells is not None:
            model.keep_original()
            if model.original_field.size != int(meta["original_grid"]):
                model.original_field.upsample(int(meta["original_grid"]))
            model.original_field.requires_grad_(False)
            model.original_occupancy.cells = original_cells.bool()
            model.original_occupancy.warmed = bool(meta["original_occupancy_warmed"])
        model.load_state_dict(tensors, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise InputError(f"{name} is damaged: {str(err).splitlines()[0]}.") from err
    model.occupancy.cells = cells
    model.occupancy.warmed = bool(meta["occupancy_warmed"])
    header = SceneHeader(meta["models"], meta["source"], meta["edits"])
    return model, header


def load_scene_file(path: str | Path) -> tuple[LatentNerf, SceneHeader]:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as err:
        raise InputError(f"The scene file {path} does not exist.") from err
    except OSError as err:
        raise InputError(f"The scene file {path} cannot be read: {err}.") from err
    return load_scene_bytes(data, path.name)
