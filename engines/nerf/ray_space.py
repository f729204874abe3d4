"""Where along a ray the field is sampled, for the three kinds of capture: a bounded scene in
the box [-1, 1]^3 (object-centric), forward-facing scenes in normalised device coordinates
(NeRF's NDC: depth from the near plane to infinity fills the box), and unbounded 360 scenes
through mip-NeRF 360's contraction (everything beyond the unit ball squeezed into the shell
up to radius 2, then halved into the box).

Each space hands the field points in [-1, 1]^3 and interval lengths measured in those same
field coordinates, so the field, its occupancy grid and the compositing are the same for all
three."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from .sampler import MIN_NEAR, RaySamples, stratified_fractions, stratified_samples

BOX, NDC, CONTRACT = "box", "ndc", "contract"
KINDS = (BOX, NDC, CONTRACT)
AUTO = "auto"
CONTRACT_FAR = 1e4  # scene units: "infinity" for an unbounded ray (contracts to radius ~2)


@dataclass
class RaySpace:
    kind: str = BOX
    # NDC only: the pinhole the warp is defined by (px) and its near plane (scene units)
    focal: float = 0.0
    width: float = 0.0
    height: float = 0.0
    near: float = 1.0
    # contraction only: where rays start (scene units; from the capture's nearest depth)
    start: float = MIN_NEAR

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> RaySpace:
        data = dict(data or {})
        names = ("focal", "width", "height", "near", "start")
        numbers = {k: float(data[k]) for k in names if k in data}
        space = cls(kind=str(data.get("kind", BOX)), **numbers)
        if space.kind not in KINDS:
            raise ValueError(f"unknown ray space {space.kind!r}")
        return space

    def samples(
        self,
        origins: torch.Tensor,
        directions: torch.Tensor,
        count: int,
        jitter: bool,
        generator: torch.Generator | None = None,
    ) -> RaySamples:
        if self.kind == NDC:
            return self._ndc_samples(origins, directions, count, jitter, generator)
        if self.kind == CONTRACT:
            return self._contracted_samples(origins, directions, count, jitter, generator)
        return stratified_samples(origins, directions, count, jitter, generator)

    def to_field(self, points: torch.Tensor) -> torch.Tensor:
        """Scene points (..., 3) -> the field's coordinates (inside [-1, 1]^3 when the field
        can represent them)."""
        if self.kind == NDC:
            return self._ndc_points(points)
        if self.kind == CONTRACT:
            return contract(points) / 2
        return points

    # -- NDC -----------------------------------------------------------------------------------

    def _ndc_points(self, points: torch.Tensor) -> torch.Tensor:
        x, y, z = points.unbind(-1)
        ax, ay = -self.focal / (self.width / 2), -self.focal / (self.height / 2)
        return torch.stack([ax * x / z, ay * y / z, 1 + 2 * self.near / z], dim=-1)

    def ndc_rays(
        self, origins: torch.Tensor, directions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """NeRF's NDC rays: origins moved to the near plane z = -near, then warped; t in
        [0, 1] runs from the near plane to infinity. Returns (origins', directions', valid)."""
        dz = directions[:, 2]
        valid = dz < -1e-6  # rays that go forward, away from the cameras' side of the plane
        dz = torch.where(valid, dz, torch.full_like(dz, -1e-6))
        t = -(self.near + origins[:, 2]) / dz
        o = origins + t[:, None] * directions
        ox, oy, oz = o.unbind(-1)
        dx, dy = directions[:, 0], directions[:, 1]
        ax, ay = -self.focal / (self.width / 2), -self.focal / (self.height / 2)
        origin = torch.stack([ax * ox / oz, ay * oy / oz, 1 + 2 * self.near / oz], dim=-1)
        direction = torch.stack(
            [ax * (dx / dz - ox / oz), ay * (dy / dz - oy / oz), -2 * self.near / oz], dim=-1
        )
        return origin, direction, valid

    def _ndc_samples(self, origins, directions, count, jitter, generator) -> RaySamples:
        origin, direction, valid = self.ndc_rays(origins, directions)
        fraction = stratified_fractions(origins.shape[0], count, jitter, generator, origins.device)
        points = origin[:, None, :] + fraction[..., None] * direction[:, None, :]
        deltas = (direction.norm(dim=-1, keepdim=True) / count).expand_as(fraction)
        return RaySamples(points, fraction, deltas, valid)

    # -- contraction ---------------------------------------------------------------------------

    def _contracted_samples(self, origins, directions, count, jitter, generator) -> RaySamples:
        """Samples evenly spaced in s = g(t), g(t) = t below 1 and 2 - 1/t beyond (linear near
        the camera, linear in disparity far away), from `start` to CONTRACT_FAR. A start
        at the capture's nearest depth leaves no room for floaters between a camera and what
        it sees: the cameras sit inside the contracted domain (unlike the box's and NDC's)."""
        rays = origins.shape[0]
        lo, hi = _g(torch.tensor(self.start)), _g(torch.tensor(CONTRACT_FAR))
        edges = torch.linspace(0, 1, count + 1, device=origins.device)
        fraction = stratified_fractions(rays, count, jitter, generator, origins.device)
        t = _g_inverse(lo + fraction * (hi - lo))
        t_edges = _g_inverse(lo + edges * (hi - lo)).expand(rays, -1)
        world = origins[:, None, :] + t[..., None] * directions[:, None, :]
        edge_points = contract(origins[:, None, :] + t_edges[..., None] * directions[:, None, :])
        deltas = (edge_points[:, 1:] - edge_points[:, :-1]).norm(dim=-1) / 2
        inside = torch.ones(rays, dtype=torch.bool, device=origins.device)
        return RaySamples(contract(world) / 2, t, deltas, inside)


def contract(points: torch.Tensor) -> torch.Tensor:
    """mip-NeRF 360's contraction: x inside the unit ball, (2 - 1/|x|) x/|x| beyond."""
    norm = points.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    return torch.where(norm <= 1, points, (2 - 1 / norm) * points / norm)


def _g(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t < 1, t, 2 - 1 / t)


def _g_inverse(s: torch.Tensor) -> torch.Tensor:
    return torch.where(s < 1, s, 1 / (2 - s).clamp_min(1e-6))
