"""The latent NeRF: a TensoRF field, its sampler and renderer, the refinement network, and the
training cameras it was fitted on. Renders RGB (the RGB head) and SD latents (the latent head,
then the refinement network), one ray batch or one whole view at a time.

After an edit, a frozen copy of the fitted field and its occupancy grid (`original`) serves the
RGB head, so that "RGB head (original)" is the scene as fitted, not a mix of fit and edit."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from dataclasses import field as default

import numpy as np
import torch
from torch import nn

from .cameras import Cameras
from .field import FieldConfig, TensorVMField
from .ray_space import RaySpace
from .refine import RefinementNet, RefinerConfig
from .renderer import composite_values, composite_weights
from .sampler import OccupancyGrid

VAE_FACTOR = 8  # SD's VAE downsamples 8x: a 512x512 view is a 64x64 latent
WEIGHT_FLOOR = 1e-4  # samples weighing less are not shaded (TensoRF does the same)
RGB, LATENT = "rgb", "latent"


@dataclass
class NerfConfig:
    width: int  # working resolution of the views, px (multiples of 8)
    height: int
    samples: int = 96  # per ray, across the box
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    field: FieldConfig = default(default_factory=FieldConfig)
    refiner: RefinerConfig = default(default_factory=RefinerConfig)
    occupancy_size: int = 64
    space: RaySpace = default(default_factory=RaySpace)  # box, NDC or contracted rays

    @property
    def latent_size(self) -> tuple[int, int]:
        return self.width // VAE_FACTOR, self.height // VAE_FACTOR


class LatentNerf(nn.Module):
    def __init__(self, config: NerfConfig, cameras: Cameras, train: list[int], test: list[int]):
        super().__init__()
        self.config = config
        self.cameras = cameras
        self.train_views = list(train)
        self.test_views = list(test)
        self.field = TensorVMField(config.field)
        self.refiner = RefinementNet(config.refiner, config.field.latent_channels)
        self.background_latent = nn.Parameter(torch.zeros(config.field.latent_channels))
        self.register_buffer("background_rgb", torch.tensor(config.background, dtype=torch.float32))
        self.occupancy = OccupancyGrid(config.occupancy_size)
        self.original_field: TensorVMField | None = None  # set by `keep_original`
        self.original_occupancy: OccupancyGrid | None = None

    def keep_original(self) -> None:
        """Freeze a copy of the field and occupancy grid for the RGB head, once: a second edit
        keeps the first fit's copy."""
        if self.original_field is None:
            self.original_field = copy.deepcopy(self.field).requires_grad_(False)
            self.original_occupancy = copy.deepcopy(self.occupancy)

    def original_differs(self) -> bool:
        """Whether the frozen copy is no longer the live field (the scene file then keeps it)."""
        if self.original_field is None:
            return False
        live = self.field.state_dict()
        frozen = self.original_field.state_dict()
        return any(
            live[name].shape != tensor.shape or not torch.equal(live[name], tensor)
            for name, tensor in frozen.items()
        ) or not torch.equal(self.occupancy.cells, self.original_occupancy.cells)

    @property
    def device(self) -> torch.device:
        return self.background_latent.device

    def to(self, *args, **kwargs):
        moved = super().to(*args, **kwargs)
        self.cameras = self.cameras.to(self.device)
        self.occupancy.cells = self.occupancy.cells.to(self.device)
        if self.original_occupancy is not None:
            self.original_occupancy.cells = self.original_occupancy.cells.to(self.device)
        return moved

    def step_size(self) -> float:
        """The length of one sample interval on a ray through the box's diagonal."""
        return 2 * 3**0.5 / self.config.samples

    def render_rays(
        self,
        origins: torch.Tensor,
        directions: torch.Tensor,
        heads: tuple[str, ...] = (RGB,),
        jitter: bool = False,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """Per ray: the requested heads' composited values, `accumulation` and `depth` (of the
        live field). The RGB head reads the frozen original when there is one."""
        frozen = RGB in heads and self.original_field is not None
        live = tuple(h for h in heads if not (frozen and h == RGB))
        out = {}
        if frozen:
            original = (self.original_field, self.original_occupancy)
            out = self._render(*original, origins, directions, (RGB,), jitter, generator)
        if live or not frozen:
            out.update(
                self._render(
                    self.field, self.occupancy, origins, directions, live, jitter, generator
                )
            )
        return out

    def _render(
        self,
        field: TensorVMField,
        occupancy: OccupancyGrid,
        origins: torch.Tensor,
        directions: torch.Tensor,
        heads: tuple[str, ...],
        jitter: bool,
        generator: torch.Generator | None,
    ) -> dict[str, torch.Tensor]:
        samples = self.config.space.samples(
            origins, directions, self.config.samples, jitter, generator
        )
        points = samples.points
        if occupancy.warmed:
            active = occupancy.lookup(points)
        else:
            active = (points.abs() <= 1).all(dim=-1)
        active = active & samples.inside[:, None]
        sigma = torch.zeros(samples.t.shape, device=points.device)
        if active.any():
            sigma = sigma.index_put((active,), field.density(points[active]))
        compositing = composite_weights(sigma, samples.deltas, samples.t)
        out = {"accumulation": compositing.accumulation, "depth": compositing.depth}
        visible = compositing.weights > WEIGHT_FLOOR
        features = None
        if visible.any() and heads:
            view = directions[:, None, :].expand_as(points)
            features = field.features(points[visible], view[visible])
        for head in heads:
            background = self.background_rgb if head == RGB else self.background_latent
            values = torch.zeros((*samples.t.shape, background.shape[0]), device=points.device)
            if features is not None:
                shaded = field.rgb(features) if head == RGB else field.latent(features)
                values = values.index_put((visible,), shaded)
            out[head] = composite_values(compositing, values, background)
        return out

    def render_view(
        self,
        cameras: Cameras,
        index: int,
        head: str = RGB,
        chunk: int = 8192,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """(C, H, W) render of one camera, in ray chunks (for a rendering without gradients,
        call inside torch.no_grad()). With a `generator` the samples are jittered along the
        rays (training); without, at the middle of each interval (display)."""
        origins, directions = cameras.rays(index)
        jitter = generator is not None
        parts = [
            self.render_rays(
                origins[i : i + chunk], directions[i : i + chunk], (head,), jitter, generator
            )[head]
            for i in range(0, origins.shape[0], chunk)
        ]
        image = torch.cat(parts)
        return image.T.reshape(-1, cameras.height, cameras.width)

    def latent_cameras(self, cameras: Cameras | None = None) -> Cameras:
        """Cameras at the latent resolution: one ray per latent pixel (8x8 image pixels)."""
        cameras = cameras if cameras is not None else self.cameras
        width, height = self.config.latent_size
        return cameras.resized(width, height)

    def raw_latent(
        self, cameras: Cameras, index: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """(1, 4, h, w) the field's latent render of a camera given at image resolution
        (jittered samples with a `generator`)."""
        cameras = self.latent_cameras(cameras)
        return self.render_view(cameras, index, LATENT, generator=generator)[None]

    def latent(
        self, cameras: Cameras, index: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """(1, 4, h, w) refined latent: what the VAE decodes and the UNet guides."""
        return self.refiner(self.raw_latent(cameras, index, generator))

    def update_occupancy(self) -> float:
        return self.occupancy.update(self.field.density, self.step_size())

    def camera_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return self.cameras.c2w.cpu().numpy(), self.cameras.intrinsics().cpu().numpy()
