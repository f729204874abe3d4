"""Small valid NeRF inputs written by our own code in each format a user brings (a
transforms.json scene, an LLFF poses_bounds.npy scene, a scene zip) and a tiny `.nerf` scene
file, for the reader tests to mutate and craft bombs from."""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np

from engines.nerf.cameras import look_at

VIEWS = 8
SIDE = 8  # px: the images are tiny, the readers' work is in their headers


def ring_poses(count: int = VIEWS) -> list[np.ndarray]:
    """(3, 4) OpenGL camera-to-world poses on a ring looking at the origin."""
    return [
        look_at(
            np.array(
                [3 * math.cos(2 * math.pi * i / count), 3 * math.sin(2 * math.pi * i / count), 1.0]
            ),
            np.zeros(3),
            np.array([0.0, 0.0, 1.0]),
        )
        for i in range(count)
    ]


def png_bytes(value: int, side: int = SIDE) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (value % 256, 80, 120)).save(buffer, format="PNG")
    return buffer.getvalue()


def transforms(count: int = VIEWS, names: str = "v{}") -> dict:
    frames = [
        {"file_path": names.format(i), "transform_matrix": np.vstack([p, [0, 0, 0, 1]]).tolist()}
        for i, p in enumerate(ring_poses(count))
    ]
    return {"camera_angle_x": 0.8, "frames": frames}


def write_transforms_scene(folder: Path, count: int = VIEWS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"v{i}.png").write_bytes(png_bytes(20 * i))
    (folder / "transforms.json").write_text(json.dumps(transforms(count)))
    return folder


def poses_bounds(count: int = VIEWS) -> np.ndarray:
    rows = []
    for i in range(count):
        pose_drb = np.array([[0, 1, 0, 0.1 * i], [1, 0, 0, 0], [0, 0, 1, 0]], dtype=float)
        hwf = np.array([[SIDE], [SIDE], [10.0]])
        rows.append(np.concatenate([np.concatenate([pose_drb, hwf], 1).ravel(), [1.0, 5.0]]))
    return np.stack(rows)


def write_llff_scene(folder: Path, count: int = VIEWS) -> Path:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / "images" / f"{i:03d}.png").write_bytes(png_bytes(30 * i))
    np.save(folder / "poses_bounds.npy", poses_bounds(count))
    return folder


def scene_zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def transforms_zip(count: int = VIEWS, side: int = SIDE) -> bytes:
    entries = {f"scene/v{i}.png": png_bytes(20 * i, side) for i in range(count)}
    entries["scene/transforms.json"] = json.dumps(transforms(count)).encode()
    return scene_zip(entries)


def tiny_scene_file(edited: bool = False) -> bytes:
    """A `.nerf` of a tiny random field (a reader test needs its format, not a good fit);
    `edited`: it also keeps the fitted field the edit started from."""
    import torch

    from engines.nerf.cameras import Cameras
    from engines.nerf.field import FieldConfig
    from engines.nerf.model import LatentNerf, NerfConfig
    from engines.nerf.refine import RefinerConfig
    from engines.nerf.scene_file import SceneHeader, scene_bytes

    config = NerfConfig(
        16,
        16,
        samples=8,
        field=FieldConfig(8, 8, 2, 2, 4, 8),
        refiner=RefinerConfig(channels=8, blocks=1, groups=4, heads=2),
        occupancy_size=8,
    )
    intrinsics = np.tile([20.0, 20.0, 8.0, 8.0], (VIEWS, 1))
    cameras = Cameras.from_arrays(np.stack(ring_poses()), intrinsics, 16, 16)
    torch.manual_seed(0)
    model = LatentNerf(config, cameras, list(range(1, VIEWS)), [0])
    edits = []
    if edited:
        model.keep_original()
        with torch.no_grad():
            model.field.density_planes.add_(0.5)
        edits = [{"source": "a cat", "target": "a dog", "mode": "latent"}]
    return scene_bytes(model, SceneHeader({"vae": {"repo": "x/y"}}, {"views": VIEWS}, edits))
