"""Pinhole cameras: intrinsics, camera-to-world poses, rays, axis conventions, normalisation.

Poses are kept in the OpenGL convention (Blender, nerfstudio, instant-ngp): +X right, +Y up,
the camera looks down -Z. OpenCV/COLMAP poses (+Y down, looking down +Z) and LLFF's
down-right-back (DRB) poses are converted on reading. Pixel centres are at i + 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

OPENGL, OPENCV = "opengl", "opencv"
CONVENTIONS = (OPENGL, OPENCV)


def to_opengl(c2w: np.ndarray, convention: str) -> np.ndarray:
    """(N, 3|4, 4) camera-to-world poses in `convention` -> (N, 3, 4) OpenGL poses."""
    poses = np.asarray(c2w, dtype=np.float64)[:, :3, :4].copy()
    if convention == OPENCV:
        poses[:, :, 1:3] *= -1  # flip the camera's Y and Z axes
    elif convention != OPENGL:
        raise ValueError(f"unknown camera convention {convention!r}")
    return poses


def llff_to_opengl(poses_drb: np.ndarray) -> np.ndarray:
    """LLFF's (N, 3, 4) poses with columns (down, right, back, position) -> OpenGL (right, up,
    back, position): the DRB -> RUB reorder of the LLFF loader."""
    poses = np.asarray(poses_drb, dtype=np.float64)
    return np.concatenate([poses[:, :, 1:2], -poses[:, :, 0:1], poses[:, :, 2:4]], axis=2)


@dataclass
class Cameras:
    """N pinhole cameras sharing one image size. c2w: (N, 3, 4) OpenGL; fx, fy, cx, cy: (N,)."""

    c2w: torch.Tensor
    fx: torch.Tensor
    fy: torch.Tensor
    cx: torch.Tensor
    cy: torch.Tensor
    width: int
    height: int

    def __len__(self) -> int:
        return int(self.c2w.shape[0])

    def __getitem__(self, index) -> Cameras:
        index = [index] if isinstance(index, int) else index
        return Cameras(
            self.c2w[index],
            self.fx[index],
            self.fy[index],
            self.cx[index],
            self.cy[index],
            self.width,
            self.height,
        )

    def resized(self, width: int, height: int) -> Cameras:
        """The same cameras for images resized to width x height (intrinsics scale with it)."""
        sx, sy = width / self.width, height / self.height
        return Cameras(
            self.c2w, self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, width, height
        )

    def to(self, device) -> Cameras:
        move = {k: getattr(self, k).to(device) for k in ("c2w", "fx", "fy", "cx", "cy")}
        return Cameras(**move, width=self.width, height=self.height)

    def intrinsics(self) -> torch.Tensor:
        """(N, 4): fx, fy, cx, cy."""
        return torch.stack([self.fx, self.fy, self.cx, self.cy], dim=-1)

    @classmethod
    def from_arrays(cls, c2w, intrinsics, width: int, height: int) -> Cameras:
        c2w = torch.as_tensor(np.asarray(c2w), dtype=torch.float32)
        k = torch.as_tensor(np.asarray(intrinsics), dtype=torch.float32).reshape(-1, 4)
        return cls(c2w[:, :3, :4].contiguous(), *k.unbind(-1), width=width, height=height)

    def rays(
        self, index: int, pixels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Origins and unit directions (P, 3) of camera `index` through `pixels` ((P, 2) as
        (column, row) integer indices; every pixel, row-major, by default)."""
        device = self.c2w.device
        if pixels is None:
            rows, cols = torch.meshgrid(
                torch.arange(self.height, device=device),
                torch.arange(self.width, device=device),
                indexing="ij",
            )
            pixels = torch.stack([cols.reshape(-1), rows.reshape(-1)], dim=-1)
        u = pixels[:, 0].float() + 0.5
        v = pixels[:, 1].float() + 0.5
        x = (u - self.cx[index]) / self.fx[index]
        y = -(v - self.cy[index]) / self.fy[index]  # image rows grow downwards, camera Y up
        directions = torch.stack([x, y, -torch.ones_like(x)], dim=-1)
        rotation, position = self.c2w[index, :, :3], self.c2w[index, :, 3]
        directions = directions @ rotation.T
        directions = directions / directions.norm(dim=-1, keepdim=True)
        return position.expand_as(directions), directions

    def rays_of(
        self, indices: torch.Tensor, pixels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rays of many cameras at once: camera `indices[i]` through `pixels[i]`."""
        u = pixels[:, 0].float() + 0.5
        v = pixels[:, 1].float() + 0.5
        x = (u - self.cx[indices]) / self.fx[indices]
        y = -(v - self.cy[indices]) / self.fy[indices]
        directions = torch.stack([x, y, -torch.ones_like(x)], dim=-1)
        rotation = self.c2w[indices, :, :3]
        directions = torch.einsum("pij,pj->pi", rotation, directions)
        directions = directions / directions.norm(dim=-1, keepdim=True)
        return self.c2w[indices, :, 3], directions


def look_at(position: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """An OpenGL camera-to-world (3, 4) at `position` looking at `target`."""
    forward = target - position
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, up)
    right = right / np.linalg.norm(right)
    true_up = np.cross(right, forward)
    return np.stack([right, true_up, -forward, position], axis=1)


def nearest_point_to_axes(c2w: np.ndarray) -> np.ndarray | None:
    """The point closest (least squares) to every camera's optical axis; None when the axes
    are (nearly) parallel, as in forward-facing captures."""
    origins, forwards = c2w[:, :, 3], -c2w[:, :, 2]
    forwards = forwards / np.linalg.norm(forwards, axis=1, keepdims=True)
    projectors = np.eye(3)[None] - forwards[:, :, None] * forwards[:, None, :]
    a = projectors.sum(axis=0)
    b = np.einsum("nij,nj->i", projectors, origins)
    if np.linalg.cond(a) > 1e4:
        return None
    return np.linalg.solve(a, b)


CAMERA_DISTANCE = 2.5
"""After normalisation the cameras sit this far from the scene centre on average; the scene
is assumed to fit in [-1, 1]^3 (an object at most ~0.4 of the camera distance across)."""


def normalise_poses(
    c2w: np.ndarray, bounds: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, float]:
    """Translate and scale OpenGL poses so the scene sits in the box [-1, 1]^3.

    The centre is the point nearest all optical axes (inward-facing captures); when the axes
    are near parallel and LLFF near/far bounds are known, the middle of the viewed depth range.
    The scale puts the cameras CAMERA_DISTANCE from the centre on average (with bounds: the far
    side of the viewed range at the box's edge). Returns (poses, centre, scale)."""
    poses = np.asarray(c2w, dtype=np.float64).copy()
    origins = poses[:, :, 3]
    centre = nearest_point_to_axes(poses)
    if centre is None:
        if bounds is not None:
            forwards = -poses[:, :, 2]
            middle = bounds.mean(axis=1, keepdims=True)
            centre = (origins + forwards * middle).mean(axis=0)
        else:
            centre = origins.mean(axis=0)
    distance = float(np.linalg.norm(origins - centre, axis=1).mean())
    if bounds is not None and nearest_point_to_axes(poses) is None:
        scale = 1.0 / max(float(bounds.max()), 1e-6)
    else:
        scale = CAMERA_DISTANCE / max(distance, 1e-6)
    poses[:, :, 3] = (origins - centre) * scale
    return poses, centre, scale


def orbit_pose(
    azimuth_deg: float, elevation_deg: float, radius: float, up: np.ndarray
) -> np.ndarray:
    """An OpenGL camera on a sphere about the origin, `up` the orbit's axis, looking at 0."""
    up = up / np.linalg.norm(up)
    helper = np.array([1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    a = np.cross(up, helper)
    a /= np.linalg.norm(a)
    b = np.cross(up, a)
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    direction = np.cos(el) * (np.cos(az) * a + np.sin(az) * b) + np.sin(el) * up
    return look_at(direction * radius, np.zeros(3), up)
