"""Reconstruction: fit the field to the views' VAE latents (latent head, through the refinement
network) and to their pixels (RGB head) at once, with TensoRF's regularisers and schedules."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..long_runs import RunUpdate
from .capture_images import unit_float
from .field import grid_schedule
from .model import RGB, LatentNerf

LR_DECAY = 0.1  # learning rates fall to this fraction by the end (TensoRF's)
FORWARD_FACING_TV = 0.1  # ours: TV on forward-facing (NDC) scenes, as TensoRF uses TV on LLFF
OCCUPANCY_EVERY = 200


@dataclass
class FitSettings:
    steps: int = 3000
    batch_rays: int = 4096
    lr_grid: float = 0.02  # TensoRF's
    lr_network: float = 1e-3
    rgb_weight: float = 1.0
    latent_weight: float = 1.0
    raw_latent_weight: float = 0.5  # the field's own render toward the VAE latent too
    tv_weight: float = 0.0  # TensoRF's on object-centric scenes; FORWARD_FACING_TV on LLFF
    l1_weight: float = 8e-5  # TensoRF's, until the first occupancy update
    l1_weight_rest: float = 4e-5  # TensoRF's, after it
    lr_upsample_reset: bool = True  # TensoRF's: learning rates start over after an upsample
    jitter: bool = True  # training samples at a random place in each interval (TensoRF's)
    preview_every: int = 200
    seed: int = 0


@dataclass
class FitReport:
    steps_done: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    step_seconds: list[float] = field(default_factory=list)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = F.mse_loss(a.float(), b.float()).item()
    return float("inf") if mse == 0 else -10.0 * torch.log10(torch.tensor(mse)).item()


def make_optimizer(model: LatentNerf, settings: FitSettings, scale: float = 1.0):
    groups = [
        {"params": model.field.grid_parameters(), "lr": settings.lr_grid * scale},
        {
            "params": [
                *model.field.network_parameters(),
                *model.refiner.parameters(),
                model.background_latent,
            ],
            "lr": settings.lr_network * scale,
        },
    ]
    return torch.optim.Adam(groups, betas=(0.9, 0.99))


class Fitter:
    """One fit: `step()` runs one iteration; `run()` runs them all with updates and Stop."""

    def __init__(
        self,
        model: LatentNerf,
        images: torch.Tensor,  # (N, H, W, 3) uint8, or floats in [0, 1]
        latents: torch.Tensor | None,  # (N, 4, h, w) VAE latents, or None for RGB only
        settings: FitSettings,
    ):
        self.model = model
        self.images = images.to(model.device)
        self.latents = latents.to(model.device) if latents is not None else None
        self.settings = settings
        self.generator = torch.Generator(device="cpu").manual_seed(settings.seed)
        self.samples = torch.Generator(device=model.device).manual_seed(settings.seed)
        self.schedule = grid_schedule(model.config.field, settings.steps)
        self.optimizer = make_optimizer(model, settings)
        self.train = torch.tensor(model.train_views)
        self.step_index = 0
        self.report = FitReport()

    def _decay(self) -> float:
        return LR_DECAY ** (self.step_index / max(self.settings.steps, 1))

    def _rgb_batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cameras = self.model.cameras
        count = self.settings.batch_rays
        pick = torch.randint(len(self.train), (count,), generator=self.generator)
        views = self.train[pick]
        columns = torch.randint(cameras.width, (count,), generator=self.generator)
        rows = torch.randint(cameras.height, (count,), generator=self.generator)
        device = self.model.device
        views, columns, rows = views.to(device), columns.to(device), rows.to(device)
        origins, directions = cameras.rays_of(views, torch.stack([columns, rows], dim=-1))
        return origins, directions, unit_float(self.images[views, rows, columns])

    def step(self) -> dict[str, float]:
        model, settings = self.model, self.settings
        self.step_index += 1
        if self.step_index in self.schedule:
            model.field.upsample(self.schedule[self.step_index])
            scale = 1.0 if settings.lr_upsample_reset else self._decay()
            self.optimizer = make_optimizer(model, settings, scale)
        losses: dict[str, float] = {}
        total = torch.zeros((), device=model.device)
        if settings.rgb_weight > 0:
            origins, directions, target = self._rgb_batch()
            jitter = settings.jitter
            rendered = model.render_rays(origins, directions, (RGB,), jitter, self.samples)[RGB]
            rgb_loss = F.mse_loss(rendered, target)
            total = total + settings.rgb_weight * rgb_loss
            losses["rgb"] = rgb_loss.item()
        if self.latents is not None and settings.latent_weight > 0:
            view = int(self.train[self.step_index % len(self.train)])
            raw = model.raw_latent(model.cameras, view, self.samples if settings.jitter else None)
            refined = model.refiner(raw)
            target = self.latents[view : view + 1]
            latent_loss = F.mse_loss(refined, target)
            raw_loss = F.mse_loss(raw, target)
            total = total + settings.latent_weight * (
                latent_loss + settings.raw_latent_weight * raw_loss
            )
            losses["latent"] = latent_loss.item()
            losses["latent_raw"] = raw_loss.item()
        l1_weight = settings.l1_weight_rest if model.occupancy.warmed else settings.l1_weight
        regulariser = l1_weight * model.field.density_l1()
        if settings.tv_weight > 0:
            regulariser = regulariser + settings.tv_weight * model.field.total_variation()
        total = total + regulariser
        losses["regulariser"] = regulariser.item()
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        decay = LR_DECAY ** (1 / max(settings.steps, 1))
        for group in self.optimizer.param_groups:
            group["lr"] *= decay
        if self.step_index % OCCUPANCY_EVERY == 0 and self._warm():
            with torch.no_grad():
                losses["occupied"] = model.update_occupancy()
        losses["total"] = total.item()
        return losses

    def _warm(self) -> bool:
        return self.step_index >= 2 * OCCUPANCY_EVERY

    @torch.no_grad()
    def heldout(self, views: list[int] | None = None) -> tuple[float, torch.Tensor | None]:
        """Mean PSNR of the RGB head on held-out views, and the first one's render."""
        views = self.model.test_views if views is None else views
        if not views:
            return float("nan"), None
        scores, first = [], None
        for view in views:
            image = self.model.render_view(self.model.cameras, view, RGB).permute(1, 2, 0)
            scores.append(psnr(image, unit_float(self.images[view])))
            first = image if first is None else first
        return sum(scores) / len(scores), first

    def run(
        self,
        emit: Callable[[RunUpdate], None] | None = None,
        stop: threading.Event | None = None,
        preview: Callable[[torch.Tensor], object] | None = None,
    ) -> FitReport:
        emit = emit or (lambda update: None)
        started = time.perf_counter()
        settings = self.settings
        while self.step_index < settings.steps and not (stop and stop.is_set()):
            began = time.perf_counter()
            losses = self.step()
            self.report.step_seconds.append(time.perf_counter() - began)
            self.report.history.append({"step": self.step_index, **losses})
            done = self.step_index == settings.steps
            if self.step_index % settings.preview_every == 0 or done:
                score, image = self.heldout(self.model.test_views[:1])
                emit(
                    RunUpdate(
                        "fit",
                        self.step_index,
                        settings.steps,
                        f"Step {self.step_index}/{settings.steps}",
                        {**losses, "heldout_psnr": score},
                        preview(image) if preview and image is not None else None,
                        list(self.report.history),
                    )
                )
            elif self.step_index % 10 == 0:
                message = f"Step {self.step_index}/{settings.steps}"
                emit(RunUpdate("fit", self.step_index, settings.steps, message, losses))
        if self._warm() and self.step_index % OCCUPANCY_EVERY:
            with torch.no_grad():  # the saved grid is the final field's: edits start from it
                self.model.update_occupancy()
        self.report.steps_done = self.step_index
        self.report.seconds = time.perf_counter() - started
        return self.report
