"""The radiance field: a TensoRF vector-matrix (VM) decomposition in pure PyTorch.

Density and appearance are each a sum over the three axis-aligned planes (XY, XZ, YZ) of a
plane times a line along the remaining axis, read with `F.grid_sample`. The appearance
features feed two small heads: the 4 Stable Diffusion latent channels (unbounded) and RGB
(sigmoid), trained jointly. Points are in the box [-1, 1]^3.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

PLANE_AXES = ((0, 1), (0, 2), (1, 2))
LINE_AXES = (2, 1, 0)
DENSITY_SHIFT = -10.0  # TensoRF's: softplus(f - 10) starts the field (almost) empty
DISTANCE_SCALE = 25.0  # TensoRF's: sigma is per 1/25 of the box's unit


@dataclass
class FieldConfig:
    grid: int = 128  # final grid size per axis
    grid_start: int = 32  # coarse-to-fine: the size it starts at
    density_rank: int = 8  # components per plane
    appearance_rank: int = 24
    feature_dim: int = 27
    hidden: int = 64
    latent_channels: int = 4
    direction_frequencies: int = 2

    def to_dict(self) -> dict:
        return asdict(self)


def frequency_encoding(x: torch.Tensor, frequencies: int) -> torch.Tensor:
    """x, sin(2^k pi x), cos(2^k pi x) for k < frequencies, on the last axis."""
    if frequencies == 0:
        return x
    scales = 2.0 ** torch.arange(frequencies, device=x.device) * math.pi
    angles = (x[..., None] * scales).flatten(-2)
    return torch.cat([x, torch.sin(angles), torch.cos(angles)], dim=-1)


def _head(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inputs, hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, outputs),
    )


class TensorVMField(nn.Module):
    """sigma(x) and appearance heads of a VM-decomposed grid of `size`^3."""

    def __init__(self, config: FieldConfig, size: int | None = None):
        super().__init__()
        self.config = config
        size = size or config.grid_start
        self.density_planes = nn.Parameter(0.1 * torch.randn(3, config.density_rank, size, size))
        self.density_lines = nn.Parameter(0.1 * torch.randn(3, config.density_rank, size, 1))
        self.appearance_planes = nn.Parameter(
            0.1 * torch.randn(3, config.appearance_rank, size, size)
        )
        self.appearance_lines = nn.Parameter(0.1 * torch.randn(3, config.appearance_rank, size, 1))
        self.basis = nn.Linear(3 * config.appearance_rank, config.feature_dim, bias=False)
        directions = 3 * (1 + 2 * config.direction_frequencies)
        inputs = config.feature_dim + directions
        self.rgb_head = _head(inputs, config.hidden, 3)
        self.latent_head = _head(inputs, config.hidden, config.latent_channels)

    @property
    def size(self) -> int:
        return int(self.density_planes.shape[-1])

    @staticmethod
    def _vm(planes: torch.Tensor, lines: torch.Tensor, xyz: torch.Tensor) -> torch.Tensor:
        """(3, rank, P): plane component times line component, per plane, at points (P, 3)."""
        plane_xy = torch.stack([xyz[:, list(axes)] for axes in PLANE_AXES]).unsqueeze(2)
        line_z = torch.stack([xyz[:, axis] for axis in LINE_AXES])
        line_z = torch.stack([torch.zeros_like(line_z), line_z], dim=-1).unsqueeze(2)
        rank = planes.shape[1]
        plane = F.grid_sample(planes, plane_xy, align_corners=True).view(3, rank, -1)
        line = F.grid_sample(lines, line_z, align_corners=True).view(3, rank, -1)
        return plane * line

    def density(self, xyz: torch.Tensor) -> torch.Tensor:
        """(P,) volume density at points (P, 3) in [-1, 1]^3, per unit length of the box."""
        features = self._vm(self.density_planes, self.density_lines, xyz).sum(dim=(0, 1))
        return F.softplus(features + DENSITY_SHIFT) * DISTANCE_SCALE

    def features(self, xyz: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        """(P, feature_dim + direction encoding): the heads' input."""
        vm = self._vm(self.appearance_planes, self.appearance_lines, xyz)
        features = self.basis(vm.flatten(0, 1).T)
        encoded = frequency_encoding(directions, self.config.direction_frequencies)
        return torch.cat([features, encoded], dim=-1)

    def rgb(self, features: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.rgb_head(features))

    def latent(self, features: torch.Tensor) -> torch.Tensor:
        return self.latent_head(features)

    @torch.no_grad()
    def upsample(self, size: int) -> None:
        """Coarse to fine: resample planes and lines to `size` (new Parameters: rebuild the
        optimiser afterwards)."""
        for name in ("density", "appearance"):
            planes = getattr(self, f"{name}_planes")
            lines = getattr(self, f"{name}_lines")
            planes = F.interpolate(
                planes.data, size=(size, size), mode="bilinear", align_corners=True
            )
            lines = F.interpolate(lines.data, size=(size, 1), mode="bilinear", align_corners=True)
            setattr(self, f"{name}_planes", nn.Parameter(planes))
            setattr(self, f"{name}_lines", nn.Parameter(lines))

    def grid_parameters(self) -> list[nn.Parameter]:
        return [
            self.density_planes,
            self.density_lines,
            self.appearance_planes,
            self.appearance_lines,
        ]

    def network_parameters(self) -> list[nn.Parameter]:
        return [
            *self.basis.parameters(),
            *self.rgb_head.parameters(),
            *self.latent_head.parameters(),
        ]

    def total_variation(self) -> torch.Tensor:
        """Mean squared difference of neighbouring plane cells, density plus a tenth of
        appearance (TensoRF's regulariser)."""

        def tv(planes: torch.Tensor) -> torch.Tensor:
            dy = (planes[..., 1:, :] - planes[..., :-1, :]).pow(2).mean()
            dx = (planes[..., :, 1:] - planes[..., :, :-1]).pow(2).mean()
            return dx + dy

        return tv(self.density_planes) + 0.1 * tv(self.appearance_planes)

    def density_l1(self) -> torch.Tensor:
        return self.density_planes.abs().mean() + self.density_lines.abs().mean()


def grid_schedule(config: FieldConfig, steps: int) -> dict[int, int]:
    """Coarse to fine: step -> grid size, geometric from grid_start to grid in four moves over
    the first half of the fit (TensoRF upsamples at 2000-7000 of 30000 steps)."""
    if config.grid <= config.grid_start:
        return {}
    moves = 4
    sizes = [
        int(round(config.grid_start * (config.grid / config.grid_start) ** ((k + 1) / moves)))
        for k in range(moves)
    ]
    at = [max(1, int(steps * f)) for f in (0.1, 0.2, 0.3, 0.45)]
    return dict(zip(at, sizes, strict=True))
