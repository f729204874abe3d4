"""Editing a fitted latent NeRF with Delta Denoising Score (or SDS, for comparison).

Each step renders one training view's refined latent, takes the guidance gradient against the
cached source latent of that view (the fitted field's own render, computed once), and back-
propagates (z * grad).sum() through the refinement network into the field. Training views are
cycled in a shuffled order, `switch_every` steps each. The RGB head and the refinement network
stay as fitted."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..long_runs import RunUpdate
from .fit import FitReport
from .guidance import DDS, DiffusionGuide, Prompts, dds_gradient, guidance_loss, sds_gradient
from .model import LatentNerf


@dataclass
class EditSettings:
    mode: str = DDS
    steps: int = 300
    guidance_scale: float = 7.5
    lr_grid: float = 5e-3
    lr_network: float = 5e-4
    t_min: int = 50
    t_max: int = 950  # t ~ U[t_min, t_max)
    switch_every: int = 1
    tv_weight: float = 0.1
    preview_every: int = 50
    seed: int = 0


class Editor:
    def __init__(
        self, model: LatentNerf, guide: DiffusionGuide, prompts: Prompts, settings: EditSettings
    ):
        self.model = model
        self.guide = guide
        self.prompts = prompts
        self.settings = settings
        self.generator = torch.Generator(device="cpu").manual_seed(settings.seed)
        model.refiner.requires_grad_(False)
        field = model.field
        self.optimizer = torch.optim.Adam(
            [
                {"params": field.grid_parameters(), "lr": settings.lr_grid},
                {
                    "params": [*field.basis.parameters(), *field.latent_head.parameters()],
                    "lr": settings.lr_network,
                },
            ],
            betas=(0.9, 0.99),
        )
        with torch.no_grad():  # the source latents: the fitted field's renders, once per view
            self.sources = {v: model.latent(model.cameras, v) for v in model.train_views}
        order = torch.randperm(len(model.train_views), generator=self.generator)
        self.order = [model.train_views[i] for i in order]
        self.step_index = 0
        self.report = FitReport()

    def draw(self, latent: torch.Tensor) -> tuple[int, torch.Tensor]:
        """A timestep t ~ U[t_min, t_max) and noise shaped like `latent`."""
        s = self.settings
        t = int(torch.randint(s.t_min, s.t_max, (1,), generator=self.generator))
        noise = torch.randn(latent.shape, generator=self.generator).to(latent.device)
        return t, noise

    def gradient(self, view: int, latent: torch.Tensor, t: int, noise: torch.Tensor):
        s = self.settings
        if s.mode == DDS:
            return dds_gradient(
                self.guide, latent, self.sources[view], self.prompts, t, noise, s.guidance_scale
            )
        return sds_gradient(self.guide, latent, self.prompts, t, noise, s.guidance_scale)

    def view(self) -> int:
        position = (self.step_index // self.settings.switch_every) % len(self.order)
        return self.order[position]

    def step(self) -> dict[str, float]:
        model = self.model
        view = self.view()
        self.step_index += 1
        latent = model.latent(model.cameras, view)
        t, noise = self.draw(latent)
        gradient = self.gradient(view, latent, t, noise)
        loss = guidance_loss(latent, gradient)
        total = loss + self.settings.tv_weight * model.field.total_variation()
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        return {
            "guidance": loss.item(),
            "gradient_norm": float(gradient.float().norm()),
            "t": float(t),
            "view": float(view),
        }

    def run(
        self,
        emit: Callable[[RunUpdate], None] | None = None,
        stop: threading.Event | None = None,
        preview: Callable[[int], object] | None = None,
    ) -> FitReport:
        emit = emit or (lambda update: None)
        started = time.perf_counter()
        total = self.settings.steps
        while self.step_index < total and not (stop and stop.is_set()):
            began = time.perf_counter()
            losses = self.step()
            self.report.step_seconds.append(time.perf_counter() - began)
            self.report.history.append({"step": self.step_index, **losses})
            shown = None
            if preview and (self.step_index % self.settings.preview_every == 0):
                shown = preview(self.step_index)
            emit(
                RunUpdate(
                    "edit",
                    self.step_index,
                    total,
                    f"Edit step {self.step_index}/{total}",
                    losses,
                    shown,
                    list(self.report.history) if shown is not None else [],
                )
            )
        self.report.steps_done = self.step_index
        self.report.seconds = time.perf_counter() - started
        return self.report
