"""Which ray space a capture needs, chosen from its poses (and depth bounds or sparse points
where the format has them), and the normalisation of its poses that goes with it:

- **box** (object-centric, bounded): the centre is the point nearest every optical axis, the
  cameras 2.5 units from it, the scene in [-1, 1]^3;
- **ndc** (forward-facing: every camera looks within 30 degrees of the mean direction): LLFF's
  recentring (the mean pose becomes the identity) and scaling (the nearest depth at 1 / 0.75 so
  the near plane z = -1 cuts nothing), then NeRF's NDC warp;
- **contract** (unbounded 360: inward-facing, but depth bounds or sparse points reach far past
  the box): centred like the box, the farthest camera at radius 1, mip-NeRF 360's contraction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cameras import CAMERA_DISTANCE, nearest_point_to_axes, normalise_poses
from .ray_space import AUTO, BOX, CONTRACT, KINDS, NDC, RaySpace
from .sampler import MIN_NEAR

FORWARD_FACING_DEG = 30.0  # every camera within this of the mean viewing direction
NDC_NEAR_MARGIN = 0.75  # LLFF's bd_factor: the nearest depth lands at 1 / 0.75
FAR_FACTOR = 2.0  # depth bounds past this many camera distances: unbounded
OUTSIDE_FRACTION = 0.05  # sparse points outside the box past this fraction: unbounded
SPREAD_NEAR = 3.0  # without depth information, the near plane at this many camera spreads
CONTRACT_NEAR_MARGIN = 0.9  # contracted rays start at this fraction of the nearest depth


@dataclass
class Placement:
    c2w: np.ndarray  # (N, 3, 4) normalised OpenGL poses
    world_to_scene: np.ndarray  # (3, 4): a world point -> the normalised scene
    space: RaySpace
    reason: str  # why this space (a note for the user)


def forward_facing(c2w: np.ndarray) -> bool:
    forwards = -c2w[:, :, 2] / np.linalg.norm(c2w[:, :, 2], axis=1, keepdims=True)
    mean = forwards.mean(axis=0)
    if np.linalg.norm(mean) < 1e-6:
        return False
    mean /= np.linalg.norm(mean)
    return bool((forwards @ mean).min() > np.cos(np.radians(FORWARD_FACING_DEG)))


def _similarity(rotation: np.ndarray, centre: np.ndarray, scale: float) -> np.ndarray:
    """(3, 4): x -> scale * rotation^T (x - centre)."""
    linear = scale * rotation.T
    return np.concatenate([linear, (-linear @ centre)[:, None]], axis=1)


def _apply(c2w: np.ndarray, transform: np.ndarray) -> np.ndarray:
    linear, shift = transform[:, :3], transform[:, 3]
    scale = np.cbrt(np.linalg.det(linear))
    poses = np.empty_like(c2w)
    poses[:, :, :3] = np.einsum("ij,njk->nik", linear / scale, c2w[:, :, :3])
    poses[:, :, 3] = c2w[:, :, 3] @ linear.T + shift
    return poses


def depths(c2w: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Positive depths of sparse `points` in front of each OpenGL camera (at most 20k
    points)."""
    points = points[:: max(1, len(points) // 20000)]
    local = np.einsum("nij,npi->npj", c2w[:, :, :3], points[None] - c2w[:, None, :, 3])
    z = -local[..., 2]
    return z[z > 1e-9]


def _box(c2w, bounds) -> tuple[np.ndarray, np.ndarray]:
    poses, centre, scale = normalise_poses(c2w, bounds)
    return poses, _similarity(np.eye(3), centre, scale)


def _contracted(c2w) -> tuple[np.ndarray, np.ndarray]:
    origins = c2w[:, :, 3]
    centre = nearest_point_to_axes(c2w)
    centre = origins.mean(axis=0) if centre is None else centre
    radius = float(np.linalg.norm(origins - centre, axis=1).mean())
    transform = _similarity(np.eye(3), centre, 1.0 / max(radius, 1e-9))
    return _apply(c2w, transform), transform


def _ndc(c2w, near_depth: float) -> tuple[np.ndarray, np.ndarray]:
    """LLFF's recentring: the mean position becomes the origin and the mean pose's axes the
    world axes; the nearest depth lands at 1 / NDC_NEAR_MARGIN."""
    centre = c2w[:, :, 3].mean(axis=0)
    back = c2w[:, :, 2].mean(axis=0)
    back /= np.linalg.norm(back)
    up = c2w[:, :, 1].mean(axis=0)
    right = np.cross(up, back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    rotation = np.stack([right, up, back], axis=1)
    transform = _similarity(rotation, centre, 1.0 / max(near_depth * NDC_NEAR_MARGIN, 1e-9))
    return _apply(c2w, transform), transform


def place(
    c2w: np.ndarray,
    intrinsics: np.ndarray,
    width: int,
    height: int,
    requested: str = AUTO,
    bounds: np.ndarray | None = None,
    points: np.ndarray | None = None,
) -> Placement:
    """Choose the ray space (`requested`, or from the poses when AUTO) and normalise the
    OpenGL poses `c2w` for it. `intrinsics` (N, 4) at the working resolution; `bounds` LLFF's
    per-view near/far depths; `points` sparse world points (COLMAP)."""
    c2w = np.asarray(c2w, dtype=np.float64)
    kind, reason = requested, "as requested"
    if requested == AUTO:
        kind, reason = _choose(c2w, bounds, points)
    if kind not in KINDS:
        raise ValueError(f"unknown ray space {kind!r}")
    if kind == NDC:
        near = _near_depth(c2w, bounds, points)
        poses, transform = _ndc(c2w, near)
        space = RaySpace(NDC, float(intrinsics[0][0]), float(width), float(height), 1.0)
        space.focal /= ndc_overflow(space, poses, intrinsics, width, height)
    elif kind == CONTRACT:
        poses, transform = _contracted(c2w)
        space = RaySpace(CONTRACT, start=_contract_start(c2w, bounds, points, transform))
    else:
        poses, transform = _box(c2w, bounds if forward_facing(c2w) else None)
        space = RaySpace(BOX)
    return Placement(poses, transform, space, reason)


def ndc_overflow(space: RaySpace, c2w, intrinsics, width: int, height: int) -> float:
    """How far (>= 1) the training cameras' corner rays reach past x, y = +-1 in NDC: cameras
    off the mean pose see past its frustum, so the warp's focal is divided by this to hold
    every training ray (a wider frustum, the same warp otherwise)."""
    import torch

    from .cameras import Cameras

    cameras = Cameras.from_arrays(c2w, intrinsics, width, height)
    corners = torch.tensor([[0, 0], [width - 1, 0], [0, height - 1], [width - 1, height - 1]])
    reach = 1.0
    for index in range(len(cameras)):
        origins, directions = cameras.rays(index, corners)
        origin, direction, valid = space.ndc_rays(origins.double(), directions.double())
        for t in (0.0, 0.5, 0.9, 0.999):
            xy = (origin + t * direction)[valid, :2]
            if xy.numel():
                reach = max(reach, float(xy.abs().max()))
    return reach


def _contract_start(c2w, bounds, points, transform: np.ndarray) -> float:
    """Where contracted rays start (scene units): CONTRACT_NEAR_MARGIN of the nearest depth the
    capture records (LLFF bounds, else sparse points), at least MIN_NEAR; MIN_NEAR without
    depth information (a transforms.json)."""
    if bounds is None and (points is None or not len(points)):
        return MIN_NEAR
    scale = float(np.cbrt(np.linalg.det(transform[:, :3])))
    return max(MIN_NEAR, CONTRACT_NEAR_MARGIN * _near_depth(c2w, bounds, points) * scale)


def _near_depth(c2w, bounds, points) -> float:
    if bounds is not None:
        return float(bounds[:, 0].min())
    if points is not None and len(points):
        found = depths(c2w, points)
        if found.size:
            return float(np.percentile(found, 1))
    origins = c2w[:, :, 3]
    spread = float(np.linalg.norm(origins - origins.mean(axis=0), axis=1).mean())
    return SPREAD_NEAR * max(spread, 1e-6)


def _choose(c2w, bounds, points) -> tuple[str, str]:
    if forward_facing(c2w):
        return NDC, f"forward-facing (every camera within {FORWARD_FACING_DEG:.0f} degrees)"
    centre = nearest_point_to_axes(c2w)
    origins = c2w[:, :, 3]
    centre = origins.mean(axis=0) if centre is None else centre
    distance = float(np.linalg.norm(origins - centre, axis=1).mean())
    if bounds is not None and float(np.median(bounds[:, 1])) > FAR_FACTOR * distance:
        return CONTRACT, "unbounded 360 (depth bounds reach past the box)"
    if points is not None and len(points):
        scale = CAMERA_DISTANCE / max(distance, 1e-9)
        outside = (np.abs((points - centre) * scale) > 1).any(axis=1).mean()
        if outside > OUTSIDE_FRACTION:
            return CONTRACT, f"unbounded 360 ({outside:.0%} of the sparse points past the box)"
    return BOX, "object-centric (bounded)"
