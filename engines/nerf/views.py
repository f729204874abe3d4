"""Turning a field into pictures: VAE decoding of latent renders, orbit cameras, stills, and an
H.264 mp4 (imageio-ffmpeg's ffmpeg: libx264, yuv420p, plays in browsers)."""

from __future__ import annotations

import numpy as np
import torch

from .cameras import Cameras, orbit_pose
from .capture_images import unit_float
from .model import RGB, LatentNerf
from .ray_space import NDC


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [0, 1] -> (H, W, 3) uint8."""
    return (image.clamp(0, 1).permute(1, 2, 0).cpu().float().numpy() * 255 + 0.5).astype(np.uint8)


class Decoder:
    """SD's VAE: latent (scaled by scaling_factor) -> RGB in [0, 1]; view -> latent."""

    def __init__(self, vae):
        self.vae = vae.eval().requires_grad_(False)
        self.scale = float(vae.config.scaling_factor)

    @property
    def device(self) -> torch.device:
        return next(self.vae.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.vae.parameters()).dtype

    @torch.no_grad()
    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """(B, 4, h, w) -> (B, 3, 8h, 8w) in [0, 1]."""
        z = (latent / self.scale).to(self.device, self.dtype)
        image = self.vae.decode(z).sample.float()
        return ((image + 1) / 2).clamp(0, 1)

    @torch.no_grad()
    def encode(self, images: torch.Tensor, batch: int = 4) -> torch.Tensor:
        """(N, H, W, 3) uint8 (or floats in [0, 1]) -> (N, 4, H/8, W/8): latent_dist.mean *
        scaling_factor."""
        out = []
        for start in range(0, images.shape[0], batch):
            x = unit_float(images[start : start + batch]).permute(0, 3, 1, 2) * 2 - 1
            posterior = self.vae.encode(x.to(self.device, self.dtype)).latent_dist
            out.append(posterior.mean.float().cpu() * self.scale)
        return torch.cat(out)


def orbit_geometry(model: LatentNerf) -> tuple[float, float, np.ndarray]:
    """(radius, elevation in degrees, up axis) of the training cameras about the box centre."""
    c2w = model.cameras.c2w.cpu().numpy()
    positions = c2w[:, :, 3]
    up = c2w[:, :, 1].mean(axis=0)
    up = up / max(np.linalg.norm(up), 1e-9)
    radius = float(np.linalg.norm(positions, axis=1).mean())
    heights = positions @ up / np.maximum(np.linalg.norm(positions, axis=1), 1e-9)
    elevation = float(np.degrees(np.arcsin(np.clip(heights.mean(), -1, 1))))
    return radius, elevation, up


def forward_circle(model: LatentNerf, azimuths: list[float], distance: float) -> list:
    """Forward-facing scenes cannot be orbited: cameras on a circle in the plane of the
    training cameras (recentred: the mean pose is the identity), as wide as their spread times
    `distance`, looking down -Z like the mean pose (LLFF's render path, flattened)."""
    positions = model.cameras.c2w[:, :, 3].cpu().numpy()
    radius = float(np.linalg.norm(positions[:, :2], axis=1).mean()) * distance
    poses = []
    for azimuth in azimuths:
        angle = np.radians(azimuth)
        position = [radius * np.cos(angle), radius * np.sin(angle), 0.0]
        poses.append(np.concatenate([np.eye(3), np.asarray(position)[:, None]], axis=1))
    return poses


def orbit_cameras(
    model: LatentNerf,
    azimuths: list[float],
    elevation: float | None = None,
    distance: float = 1.0,
) -> Cameras:
    """Cameras at the training intrinsics circling the box centre; `distance` is a multiple
    of the training cameras' mean distance, `elevation` (degrees) their mean by default."""
    if model.config.space.kind == NDC:
        poses = forward_circle(model, azimuths, distance)
    else:
        radius, mean_elevation, up = orbit_geometry(model)
        elevation = mean_elevation if elevation is None else elevation
        poses = [orbit_pose(a, elevation, radius * distance, up) for a in azimuths]
    k = model.cameras.intrinsics()[0].cpu().numpy()
    intrinsics = np.tile(k, (len(poses), 1))
    cams = Cameras.from_arrays(np.stack(poses), intrinsics, model.config.width, model.config.height)
    return cams.to(model.device)


@torch.no_grad()
def render_picture(
    model: LatentNerf, cameras: Cameras, index: int, decoder: Decoder | None
) -> np.ndarray:
    """(H, W, 3) uint8: the VAE-decoded refined latent (shows edits), or the RGB head when no
    decoder is given."""
    if decoder is None:
        return to_uint8(model.render_view(cameras, index, RGB))
    return to_uint8(decoder.decode(model.latent(cameras, index))[0])


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 4) -> np.ndarray:
    spacer = np.full((left.shape[0], gap, 3), 255, dtype=np.uint8)
    return np.concatenate([left, spacer, right], axis=1)
