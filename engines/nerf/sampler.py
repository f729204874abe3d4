"""Where along a ray to sample: near/far from the box, stratified samples, and an occupancy grid
that skips empty space once the field has warmed up."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

MIN_NEAR = 0.05


def box_intersection(
    origins: torch.Tensor, directions: torch.Tensor, bound: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(near, far, hit), each (R,), of rays with the box [-bound, bound]^3 (slab method)."""
    safe = torch.where(directions.abs() < 1e-9, torch.full_like(directions, 1e-9), directions)
    lo = (-bound - origins) / safe
    hi = (bound - origins) / safe
    near = torch.minimum(lo, hi).amax(dim=-1).clamp_min(MIN_NEAR)
    far = torch.maximum(lo, hi).amin(dim=-1)
    hit = far > near
    return near, torch.where(hit, far, near + 1e-3), hit


@dataclass
class RaySamples:
    points: torch.Tensor  # (R, S, 3)
    t: torch.Tensor  # (R, S) sample distances
    deltas: torch.Tensor  # (R, S) interval lengths
    inside: torch.Tensor  # (R,) whether the ray crosses the box


def stratified_fractions(
    rays: int, count: int, jitter: bool, generator: torch.Generator | None, device
) -> torch.Tensor:
    """(rays, count) positions in [0, 1]: one per equal interval, random in it when `jitter`,
    at its middle otherwise."""
    edges = torch.linspace(0, 1, count + 1, device=device)
    if jitter:
        offset = torch.rand((rays, count), device=device, generator=generator)
    else:
        offset = torch.full((rays, count), 0.5, device=device)
    return edges[:-1] + offset * (edges[1:] - edges[:-1])


def stratified_samples(
    origins: torch.Tensor,
    directions: torch.Tensor,
    count: int,
    jitter: bool,
    generator: torch.Generator | None = None,
) -> RaySamples:
    """`count` samples per ray between the box's near and far, one per equal interval, at a
    random place in it when `jitter` (training), at its middle otherwise."""
    near, far, hit = box_intersection(origins, directions)
    fraction = stratified_fractions(origins.shape[0], count, jitter, generator, origins.device)
    span = (far - near)[:, None]
    t = near[:, None] + fraction * span
    deltas = (span / count).expand_as(t)
    points = origins[:, None, :] + t[..., None] * directions[:, None, :]
    return RaySamples(points, t, deltas, hit)


class OccupancyGrid:
    """A boolean grid over the box marking cells where the field has density; samples in empty
    cells are skipped. Until `update` first runs, every cell counts as occupied."""

    def __init__(self, size: int = 64, threshold: float = 1e-4, device=None):
        self.size = size
        self.threshold = threshold
        self.cells = torch.ones((size, size, size), dtype=torch.bool, device=device)
        self.warmed = False

    def lookup(self, points: torch.Tensor) -> torch.Tensor:
        """(...,) bool: the cell of each point (..., 3) is occupied (outside the box: False)."""
        inside = (points.abs() <= 1).all(dim=-1)
        index = ((points + 1) * 0.5 * self.size).long().clamp(0, self.size - 1)
        occupied = self.cells[index[..., 0], index[..., 1], index[..., 2]]
        return occupied & inside

    @torch.no_grad()
    def update(self, density, step_size: float, chunk: int = 1 << 16) -> float:
        """Recompute the grid from `density(points)` at cell centres; a cell is occupied when a
        step of `step_size` through it is at least `threshold` opaque (dilated by one cell).
        Returns the occupied fraction."""
        device = self.cells.device
        axis = (torch.arange(self.size, device=device) + 0.5) / self.size * 2 - 1
        centres = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).view(-1, 3)
        sigma = torch.cat([density(centres[i : i + chunk]) for i in range(0, len(centres), chunk)])
        alpha = 1 - torch.exp(-sigma * step_size)
        occupied = (alpha > self.threshold).float().view(1, 1, *self.cells.shape)
        dilated = F.max_pool3d(occupied, kernel_size=3, stride=1, padding=1)[0, 0] > 0
        self.cells = dilated
        self.warmed = True
        return float(dilated.float().mean())
