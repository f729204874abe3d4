"""Two synthetic captures ray traced by our own code, with the surface point behind every pixel
known: a forward-facing sweep (spheres in front of a far wall, LLFF poses_bounds.npy) and an
unbounded 360 capture (an object on an endless ground inside a far sky sphere, written as the
mip-NeRF 360 dataset writes it: poses_bounds.npy). The benchmark and the ray-space tests fit
them; the surface points let a test ask whether the field's domain holds what the cameras
see."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cameras import look_at

FORWARD_FACING, UNBOUNDED = "forward-facing", "unbounded"


@dataclass
class Sphere:
    centre: tuple[float, float, float]
    radius: float
    inside: bool = False  # seen from inside (a sky dome)


@dataclass
class Plane:
    height: float  # z = height, seen from above


def _hit_sphere(origins, directions, sphere: Sphere) -> np.ndarray:
    oc = origins - np.asarray(sphere.centre)
    b = (oc * directions).sum(-1)
    c = (oc * oc).sum(-1) - sphere.radius**2
    disc = b * b - c
    root = np.sqrt(np.maximum(disc, 0))
    t = -b + root if sphere.inside else -b - root
    return np.where((disc > 0) & (t > 1e-6), t, np.inf)


def _hit_plane(origins, directions, plane: Plane) -> np.ndarray:
    dz = directions[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (plane.height - origins[..., 2]) / dz
    return np.where((dz < -1e-9) & (t > 1e-6), t, np.inf)


def colour(points: np.ndarray) -> np.ndarray:
    """A smooth procedural texture of world position (low frequencies: a tiny field can fit
    it), in [0.1, 0.9]."""
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    r = 0.5 + 0.4 * np.sin(1.7 * x + 0.6 * z)
    g = 0.5 + 0.4 * np.sin(1.3 * y - 0.9 * x + 1.0)
    b = 0.5 + 0.4 * np.cos(1.1 * z + 0.7 * y)
    return np.stack([r, g, b], axis=-1)


def trace(origins, directions, shapes) -> tuple[np.ndarray, np.ndarray]:
    """(colour (P, 3), surface point (P, 3)) of the nearest hit of each ray (every ray hits:
    the scenes are closed by a wall or a dome)."""
    hits = []
    for shape in shapes:
        hit = _hit_plane if isinstance(shape, Plane) else _hit_sphere
        hits.append(hit(origins, directions, shape))
    t = np.min(np.stack(hits), axis=0)
    points = origins + t[:, None] * directions
    # far surfaces textured by direction, so their pattern is as coarse in the image as near
    shrunk = points / np.maximum(1.0, np.linalg.norm(points, axis=1, keepdims=True) / 2)
    return colour(shrunk), points


def pixel_rays(c2w: np.ndarray, focal: float, width: int, height: int):
    """OpenGL camera rays through every pixel centre, row-major."""
    rows, cols = np.meshgrid(np.arange(height) + 0.5, np.arange(width) + 0.5, indexing="ij")
    local = np.stack(
        [(cols - width / 2) / focal, -(rows - height / 2) / focal, -np.ones_like(cols)], -1
    ).reshape(-1, 3)
    directions = local @ c2w[:, :3].T
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return np.broadcast_to(c2w[:, 3], directions.shape), directions


def scene_shapes(kind: str) -> list:
    if kind == FORWARD_FACING:
        return [
            Sphere((0.35, -0.1, -3.0), 0.5),
            Sphere((-0.7, 0.3, -5.0), 1.0),
            Sphere((0.0, 0.0, 0.0), 12.0, inside=True),  # the far wall, 12 units away
        ]
    return [
        Sphere((0.0, 0.0, 0.0), 0.6),
        Sphere((0.5, -0.6, -0.3), 0.3),
        Plane(-0.6),  # endless ground
        Sphere((0.0, 0.0, 0.0), 40.0, inside=True),  # sky dome, far past the cameras
    ]


def camera_poses(kind: str, count: int) -> np.ndarray:
    """(count, 3, 4) OpenGL poses: a 2D sweep looking down -Z (forward-facing), or a ring of
    radius 2 at height 0.4 looking at the object (unbounded)."""
    poses = []
    if kind == FORWARD_FACING:
        side = math.ceil(math.sqrt(count))
        for i in range(count):
            x = -0.4 + 0.8 * (i % side) / max(side - 1, 1)
            y = -0.3 + 0.6 * (i // side) / max(side - 1, 1)
            target = np.array([0.2 * x, 0.2 * y, -4.0])
            poses.append(look_at(np.array([x, y, 0.0]), target, np.array([0.0, 1.0, 0.0])))
    else:
        for i in range(count):
            angle = 2 * math.pi * i / count
            position = np.array([2.0 * math.cos(angle), 2.0 * math.sin(angle), 0.4])
            poses.append(look_at(position, np.zeros(3), np.array([0.0, 0.0, 1.0])))
    return np.stack(poses)


def render(kind: str, c2w: np.ndarray, focal: float, width: int, height: int):
    """(image (h, w, 3) in [0, 1], surface points (h * w, 3)) of one camera."""
    origins, directions = pixel_rays(c2w, focal, width, height)
    rgb, points = trace(origins, directions, scene_shapes(kind))
    return rgb.reshape(height, width, 3), points


def write_capture(
    folder: Path, kind: str, size: tuple[int, int] = (48, 36), count: int | None = None
) -> np.ndarray:
    """Write the capture as LLFF (`images/`, `poses_bounds.npy` with per-view depth bounds);
    returns the surface points (N * h * w, 3) its cameras see."""
    from PIL import Image

    width, height = size
    count = count or (16 if kind == FORWARD_FACING else 32)  # a ring needs more views
    focal = 0.5 * width / math.tan(math.radians(30))
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows, seen = [], []
    for index, pose in enumerate(camera_poses(kind, count)):
        image, points = render(kind, pose, focal, width, height)
        Image.fromarray((image * 255 + 0.5).astype(np.uint8)).save(
            folder / "images" / f"{index:03d}.png"
        )
        depth = (points - pose[:, 3]) @ -pose[:, 2]
        drb = np.concatenate([-pose[:, 1:2], pose[:, 0:1], pose[:, 2:4]], axis=1)
        hwf = np.array([[height], [width], [focal]])
        bounds = [depth.min() * 0.9, depth.max() * 1.1]
        rows.append(np.concatenate([np.concatenate([drb, hwf], axis=1).ravel(), bounds]))
        seen.append(points)
    np.save(folder / "poses_bounds.npy", np.stack(rows))
    return np.concatenate(seen)
