"""The built-in example scene: a few textured primitives on a ground tile, ray traced by our own
code from a ring and an upper ring of cameras, written like a Blender NeRF dataset
(`transforms_train.json`, `transforms_test.json`, PNGs, `file_path` without extension).

Generated on first use into the cache; nothing large is stored in the repository."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .cameras import look_at

VERSION = 1
EXAMPLE = "example"
"""What a request names to get the built-in example."""
FOV_DEG = 40.0
TARGET = np.array([0.0, 0.0, 0.3])
UP = np.array([0.0, 0.0, 1.0])
RADIUS = 4.0
LIGHT = np.array([0.45, -0.35, 1.0]) / np.linalg.norm([0.45, -0.35, 1.0])
RINGS = {"train": [(24, 25.0, 0.0), (12, 55.0, 15.0)], "test": [(8, 40.0, 22.5)]}
"""split -> rings of (cameras, elevation in degrees, azimuth offset in degrees)."""


def example_folder(size: int = 256) -> Path:
    """The example scene at `size` px, generated into the cache the first time."""
    from ..registry import CACHE_DIR

    folder = CACHE_DIR / "nerf" / f"example-v{VERSION}-{size}px"
    if not (folder / "transforms_test.json").is_file():
        write_example(folder, size)
    return folder


def write_example(folder: Path, size: int) -> Path:
    """Render every view and write the dataset; atomic (a temp folder renamed into place)."""
    from PIL import Image

    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".example-", dir=folder.parent))
    try:
        focal = 0.5 * size / math.tan(math.radians(FOV_DEG) / 2)
        for split, rings in RINGS.items():
            (work / split).mkdir()
            frames = []
            for pose in ring_poses(rings):
                name = f"r_{len(frames):03d}"
                image = render_view(pose, focal, size)
                Image.fromarray(image).save(work / split / f"{name}.png")
                matrix = np.vstack([pose, [0, 0, 0, 1]])
                frames.append(
                    {"file_path": f"./{split}/{name}", "transform_matrix": matrix.tolist()}
                )
            meta = {"camera_angle_x": math.radians(FOV_DEG), "frames": frames}
            (work / f"transforms_{split}.json").write_text(json.dumps(meta, indent=1), "utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(work, folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder


def ring_poses(rings: list[tuple[int, float, float]]) -> list[np.ndarray]:
    poses = []
    for count, elevation, offset in rings:
        el = math.radians(elevation)
        for k in range(count):
            az = math.radians(offset + 360.0 * k / count)
            direction = np.array(
                [math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)]
            )
            poses.append(look_at(TARGET + RADIUS * direction, TARGET, UP))
    return poses


def render_view(c2w: np.ndarray, focal: float, size: int, supersample: int = 2) -> np.ndarray:
    """(size, size, 3) uint8: the scene seen by an OpenGL camera, 2x2 supersampled."""
    n = size * supersample
    grid = (np.arange(n) + 0.5) / supersample
    u, v = np.meshgrid(grid, grid)
    x = (u - size / 2) / focal
    y = -(v - size / 2) / focal
    directions = np.stack([x, y, -np.ones_like(x)], axis=-1).reshape(-1, 3) @ c2w[:, :3].T
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    colour = shade(np.broadcast_to(c2w[:, 3], directions.shape), directions)
    colour = colour.reshape(size, supersample, size, supersample, 3).mean(axis=(1, 3))
    return (np.clip(colour, 0, 1) * 255 + 0.5).astype(np.uint8)


def shade(origins: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Colour of each ray: the nearest primitive's texture, Lambert-lit; white when missed."""
    hits = [ground(origins, directions), sphere(origins, directions)]
    hits += [box(origins, directions), cylinder(origins, directions)]
    t = np.stack([h[0] for h in hits])
    nearest = np.argmin(t, axis=0)
    rows = np.arange(len(directions))
    depth = t[nearest, rows]
    normal = np.stack([h[1] for h in hits])[nearest, rows]
    albedo = np.stack([h[2] for h in hits])[nearest, rows]
    light = 0.4 + 0.6 * np.clip(np.abs((normal * LIGHT).sum(-1)), 0, 1)
    colour = albedo * light[:, None]
    return np.where(np.isfinite(depth)[:, None], colour, 1.0)


def ground(o: np.ndarray, d: np.ndarray):
    """A 2.8 x 2.8 tile at z = 0 with a soft checker."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -o[:, 2] / d[:, 2]
    p = o + t[:, None] * d
    ok = (t > 0) & (np.abs(p[:, 0]) < 1.4) & (np.abs(p[:, 1]) < 1.4)
    checker = (np.floor(p[:, 0] / 0.35) + np.floor(p[:, 1] / 0.35)) % 2
    albedo = np.where(checker[:, None] > 0, [0.85, 0.75, 0.55], [0.55, 0.4, 0.3])
    return np.where(ok, t, np.inf), np.broadcast_to(UP, d.shape), albedo


def sphere(o: np.ndarray, d: np.ndarray, centre=(0.45, -0.35, 0.42), radius=0.42):
    """A sphere with red and yellow bands of latitude."""
    oc = o - np.asarray(centre)
    b = (oc * d).sum(-1)
    disc = b * b - ((oc * oc).sum(-1) - radius * radius)
    t = -b - np.sqrt(np.maximum(disc, 0))
    ok = (disc > 0) & (t > 0)
    normal = (oc + t[:, None] * d) / radius
    band = np.floor((normal[:, 2] + 1) * 3) % 2
    albedo = np.where(band[:, None] > 0, [0.9, 0.2, 0.15], [0.95, 0.8, 0.2])
    return np.where(ok, t, np.inf), normal, albedo


def box(o: np.ndarray, d: np.ndarray, centre=(-0.45, 0.35, 0.3), half=0.3):
    """An axis-aligned cube whose faces have different colours."""
    centre = np.asarray(centre)
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = 1.0 / d
        lo = (centre - half - o) * inverse
        hi = (centre + half - o) * inverse
    near = np.nanmax(np.minimum(lo, hi), axis=1)
    far = np.nanmin(np.maximum(lo, hi), axis=1)
    ok = (near < far) & (near > 0)
    p = o + near[:, None] * d - centre
    axis = np.argmax(np.abs(p) / half, axis=1)
    normal = np.zeros_like(d)
    normal[np.arange(len(d)), axis] = np.sign(p[np.arange(len(d)), axis])
    palette = np.array([[0.2, 0.35, 0.85], [0.2, 0.7, 0.75], [0.3, 0.75, 0.3]])
    return np.where(ok, near, np.inf), normal, palette[axis]


def cylinder(o: np.ndarray, d: np.ndarray, centre=(0.35, 0.6), radius=0.2, height=0.75):
    """An upright purple cylinder with pale vertical stripes (side only, capped by its top)."""
    oc = o[:, :2] - np.asarray(centre)
    a = (d[:, :2] ** 2).sum(-1)
    b = (oc * d[:, :2]).sum(-1)
    c = (oc**2).sum(-1) - radius * radius
    disc = b * b - a * c
    with np.errstate(divide="ignore", invalid="ignore"):
        t_side = (-b - np.sqrt(np.maximum(disc, 0))) / a
        t_top = (height - o[:, 2]) / d[:, 2]
    z = o[:, 2] + t_side * d[:, 2]
    side = (disc > 0) & (t_side > 0) & (z > 0) & (z < height)
    top_xy = oc + t_top[:, None] * d[:, :2]
    top = (t_top > 0) & ((top_xy**2).sum(-1) < radius * radius)
    use_top = top & (~side | (t_top < t_side))
    t = np.where(use_top, t_top, np.where(side, t_side, np.inf))
    ring = oc + t_side[:, None] * d[:, :2]
    normal = np.concatenate([ring / radius, np.zeros((len(d), 1))], axis=1)
    normal = np.where(use_top[:, None], UP, normal)
    angle = np.arctan2(ring[:, 1], ring[:, 0])
    stripe = np.floor((angle + np.pi) / (np.pi / 4)) % 2
    albedo = np.where(stripe[:, None] > 0, [0.6, 0.3, 0.75], [0.85, 0.75, 0.9])
    albedo = np.where(use_top[:, None], [0.6, 0.3, 0.75], albedo)
    return t, normal, albedo
