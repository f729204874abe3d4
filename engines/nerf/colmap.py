"""COLMAP sparse models (`sparse/0/{cameras,images,points3D}.{bin,txt}` beside `images/`), read
with pycolmap: registered images, their cameras (PINHOLE, SIMPLE_PINHOLE, SIMPLE_RADIAL,
RADIAL, OPENCV; distortion removed later) and the sparse points.

COLMAP's poses are world-to-camera in OpenCV axes, pixel centres at i + 0.5 (ours too)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .capture_images import ViewFile
from .colmap_binary import MAX_POINTS, check_binary_model

MODEL_FILES = ("cameras", "images", "points3D", "rigs", "frames")
MAX_MODEL_BYTES = 1 << 30  # the files together


def _distortion(model: str, params: list[float]) -> tuple[float, ...] | None:
    """OpenCV's k1, k2, p1, p2 of a COLMAP camera model's extra parameters."""
    if model == "SIMPLE_RADIAL":
        return (params[3], 0.0, 0.0, 0.0)
    if model == "RADIAL":
        return (params[3], params[4], 0.0, 0.0)
    if model == "OPENCV":
        return tuple(params[4:8])
    return None


CAMERA_MODELS = {
    # model -> (fx, fy, cx, cy) from its parameter list
    "SIMPLE_PINHOLE": lambda p: (p[0], p[0], p[1], p[2]),
    "PINHOLE": lambda p: (p[0], p[1], p[2], p[3]),
    "SIMPLE_RADIAL": lambda p: (p[0], p[0], p[1], p[2]),
    "RADIAL": lambda p: (p[0], p[0], p[1], p[2]),
    "OPENCV": lambda p: (p[0], p[1], p[2], p[3]),
}


def model_folder(root: Path) -> Path | None:
    """`sparse/0/`, `sparse/` or the root itself, whichever holds cameras and images files."""
    for folder in (root / "sparse" / "0", root / "sparse", root):
        if all(
            any((folder / f"{name}{suffix}").is_file() for suffix in (".bin", ".txt"))
            for name in ("cameras", "images")
        ):
            return folder
    return None


@dataclass
class ColmapModel:
    views: list[ViewFile]
    c2w: np.ndarray  # (N, 3, 4) in OpenCV axes
    points: np.ndarray  # (P, 3) the sparse points, world coordinates
    names: list[str]


def _check_files(folder: Path, root: Path) -> None:
    total = 0
    for path in folder.iterdir():
        if path.stem in MODEL_FILES and path.suffix in (".bin", ".txt"):
            if path.is_symlink():
                raise InputError(f"{path.relative_to(root)} is a symbolic link; refused.")
            total += path.stat().st_size
    if total > MAX_MODEL_BYTES:
        raise InputError(
            f"{folder.relative_to(root)}: the COLMAP model is {total / 2**20:.0f} MiB; "
            f"at most {MAX_MODEL_BYTES >> 20} MiB is read."
        )


def _pose(image) -> np.ndarray:
    """(3, 4) world-to-camera of a pycolmap Image (a method in pycolmap 3.12+, a property
    before)."""
    pose = image.cam_from_world
    pose = pose() if callable(pose) else pose
    return np.asarray(pose.matrix(), dtype=np.float64)


def read_colmap(root: Path, folder: Path, image_root: Path) -> ColmapModel:
    """The registered images of the model in `folder`, sorted by name; images in
    `image_root`."""
    import pycolmap

    from .scenes import check_count, check_poses

    _check_files(folder, root)
    where = folder.relative_to(root).as_posix() or "."
    check_binary_model(folder, where)  # pycolmap trusts the counts in the file
    try:
        model = pycolmap.Reconstruction(str(folder))
    except (ValueError, RuntimeError, MemoryError, OSError, IndexError, TypeError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"{where}: not a readable COLMAP model ({first}).") from err
    try:
        images = sorted(
            (image for image in model.images.values() if image.has_pose), key=lambda i: i.name
        )
        check_count(len(images))
        if model.num_points3D() > MAX_POINTS:
            raise InputError(
                f"{where}: {model.num_points3D()} points; at most {MAX_POINTS} are read."
            )
        views, poses, names = _registered(model, images, root, image_root, where)
    except InputError:
        raise
    except (KeyError, IndexError, ValueError, TypeError) as err:  # names not UTF-8, ids unknown
        raise InputError(f"{where}: not a readable COLMAP model ({str(err)[:200]}).") from err
    points = np.array([p.xyz for p in model.points3D.values()], dtype=np.float64).reshape(-1, 3)
    c2w = np.stack(poses)
    check_poses(c2w, where)
    return ColmapModel(views, c2w, points[np.isfinite(points).all(axis=1)], names)


def _registered(model, images: list, root: Path, image_root: Path, where: str):
    """Each registered image's ViewFile, camera-to-world pose and name."""
    from .scenes import inside

    views, poses, names = [], [], []
    for image in images:
        camera = model.cameras[image.camera_id]
        name = camera.model.name
        if name not in CAMERA_MODELS:
            raise InputError(
                f"{where}: image {image.name} has a {name} camera; PINHOLE, SIMPLE_PINHOLE, "
                "SIMPLE_RADIAL, RADIAL and OPENCV are read (run COLMAP's image_undistorter "
                "for others)."
            )
        params = [float(v) for v in camera.params]
        fx, fy, cx, cy = CAMERA_MODELS[name](params)
        if not np.isfinite(params).all() or fx <= 0 or fy <= 0:
            raise InputError(f"{where}: camera {image.camera_id} has invalid parameters.")
        path = inside(root, f"{image_root.relative_to(root).as_posix()}/{image.name}", where)
        if not path.is_file():
            raise InputError(f"{where}: image {image.name} is not in {image_root.name}/.")
        distortion = _distortion(name, params)
        distortion = distortion if distortion and any(distortion) else None
        views.append(
            ViewFile(path, int(camera.width), int(camera.height), fx, fy, cx, cy, distortion)
        )
        world_to_camera = np.vstack([_pose(image), [0, 0, 0, 1]])
        if not np.isfinite(world_to_camera).all():
            raise InputError(f"{where}: image {image.name} has a non-finite pose.")
        poses.append(np.linalg.inv(world_to_camera)[:3])
        names.append(image.name)
    return views, poses, names
