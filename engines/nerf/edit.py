"""Editing a fitted latent NeRF with Delta Denoising Score (or SDS, for comparison).

Each step renders one training view's refined latent with jittered samples along the rays,
takes the guidance gradient against the source latent of that view (the scene as it was when
the edit started, rendered with the same samples), and backpropagates (z * grad).sum() through
the refinement network into the field. Training views are cycled in a shuffled order,
`switch_every` steps each. The refinement network stays as fitted; the RGB head renders a frozen
copy of the fitted field (`LatentNerf.keep_original`).

Nothing but the guidance moves the field: no smoothness term is added (DDS and ED-NeRF have
none, and under Adam a regulariser moves every cell the guidance leaves alone at full speed), so
an edit whose guidance gradient is zero changes nothing. The occupancy grid is rebuilt on the
fitter's schedule, so geometry can grow where the edit adds density."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..long_runs import RunUpdate
from .fit import OCCUPANCY_EVERY, FitReport
from .guidance import (
    CONSTANT,
    DDS,
    DiffusionGuide,
    Prompts,
    dds_gradient,
    guidance_loss,
    sds_gradient,
)
from .model import LatentNerf


@dataclass
class EditSettings:
    mode: str = DDS
    steps: int = 300
    guidance_scale: float = 7.5
    weighting: str = CONSTANT  # w(t): 1, or 1 - alpha_bar_t (DreamFusion's SDS)
    lr_grid: float = 5e-3
    lr_network: float = 5e-4
    t_min: int = 50
    t_max: int = 950  # t ~ U[t_min, t_max)
    switch_every: int = 1
    occupancy_every: int = OCCUPANCY_EVERY  # rebuild the occupancy grid every N steps
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
        model.keep_original()
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
        # the source: the scene as this edit found it, rendered with the edit's samples
        self.source = copy.deepcopy(model).requires_grad_(False)
        self.samples = torch.Generator(device=model.device).manual_seed(settings.seed)
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

    def render(self, view: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The edited latent of `view` (with gradients) and the source's, on the same jittered
        samples: with equal prompts DDS's gradient is then exactly zero."""
        state = self.samples.get_state()
        latent = self.model.latent(self.model.cameras, view, self.samples)
        self.samples.set_state(state)
        with torch.no_grad():
            source = self.source.latent(self.source.cameras, view, self.samples)
        return latent, source

    def gradient(
        self, latent: torch.Tensor, source: torch.Tensor, t: int, noise: torch.Tensor
    ) -> torch.Tensor:
        """The guidance gradient on `latent`, times w(t)."""
        s = self.settings
        if s.mode == DDS:
            grad = dds_gradient(
                self.guide, latent, source, self.prompts, t, noise, s.guidance_scale
            )
        else:
            grad = sds_gradient(self.guide, latent, self.prompts, t, noise, s.guidance_scale)
        return grad if s.weighting == CONSTANT else grad * self.guide.weight(t, s.weighting)

    def view(self) -> int:
        position = (self.step_index // self.settings.switch_every) % len(self.order)
        return self.order[position]

    def step(self) -> dict[str, float]:
        model = self.model
        view = self.view()
        self.step_index += 1
        latent, source = self.render(view)
        t, noise = self.draw(latent)
        gradient = self.gradient(latent, source, t, noise)
        loss = guidance_loss(latent, gradient)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        losses = {}
        if self.step_index % self.settings.occupancy_every == 0:
            with torch.no_grad():
                losses["occupied"] = model.update_occupancy()
        return {
            **losses,
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
