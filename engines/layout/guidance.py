"""Latent optimisation toward the layout: a conditional-branch forward that records attention,
the layout loss on the aggregated maps, and fp32 gradient steps on the latent."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from .attention import AttentionStore, LayerMap, StopForward
from .losses import LossWeights, aggregate_maps, box_coverage, layout_loss, phrase_maps


@dataclass(frozen=True)
class GuidanceSettings:
    strength: float = 30.0
    iterations: int = 2
    loss_threshold: float = 0.2
    weights: LossWeights = field(default_factory=LossWeights)
    self_attention: bool = True


@dataclass
class StepReport:
    """What guidance did at one denoising step."""

    step: int
    losses: list[float] = field(default_factory=list)
    updates: int = 0
    nan_skipped: bool = False


def group_boxes(
    token_indices: Sequence[tuple[int, ...]],
) -> tuple[list[tuple[int, ...]], list[int]]:
    """Distinct token groups, and for each box the group it belongs to (boxes that share a
    phrase occurrence are guided together, into the union of their boxes)."""
    groups: list[tuple[int, ...]] = []
    membership = []
    for tokens in token_indices:
        if tokens not in groups:
            groups.append(tokens)
        membership.append(groups.index(tokens))
    return groups, membership


class LayoutGuidance:
    """Moves the latent so each phrase's attention fills its box.

    One guidance forward runs the UNet on the conditional branch alone, recording attention
    at the layer map's blocks and stopping after the last of them.
    """

    def __init__(
        self,
        unet,
        scheduler,
        layer_map: LayerMap,
        token_indices: Sequence[tuple[int, ...]],
        boxes: Sequence[Sequence[float]],
        image_hw: tuple[int, int],
        latent_hw: tuple[int, int],
        settings: GuidanceSettings,
    ):
        self.unet = unet
        self.scheduler = scheduler
        self.layer_map = layer_map
        self.settings = settings
        self.image_hw = image_hw
        self.latent_hw = latent_hw
        self.groups, self.membership = group_boxes(token_indices)
        self.boxes = [tuple(float(c) for c in box) for box in boxes]
        self.store = AttentionStore()
        self.reports: list[StepReport] = []
        self.last_maps: torch.Tensor | None = None  # (groups, h, w), detached

    def group_masks(self, map_hw: tuple[int, int]) -> torch.Tensor:
        coverage = box_coverage(self.boxes, self.image_hw, map_hw)
        masks = [
            coverage[[b for b, g in enumerate(self.membership) if g == group]].amax(0)
            for group in range(len(self.groups))
        ]
        return torch.stack(masks)

    def maps(self, latents: torch.Tensor, t, cond_embeds: torch.Tensor, step: int) -> torch.Tensor:
        """Run a recording forward at `latents` and return the (groups, h, w) phrase maps."""
        model_input = self.scheduler.scale_model_input(latents.to(self.unet.dtype), t)
        with self.store.record(step):
            try:
                self.unet(model_input, t, encoder_hidden_states=cond_embeds, return_dict=False)
            except StopForward:
                pass
            cross = [probs[0] for probs in self.store.cross.values()]
            self_ = [probs[0] for probs in self.store.self_.values()]
        token_maps = aggregate_maps(
            cross, self_ if self.settings.self_attention else None, self.latent_hw
        )
        return phrase_maps(token_maps, self.groups)

    def loss(self, latents: torch.Tensor, t, cond_embeds: torch.Tensor, step: int = -1):
        """The layout loss at `latents` (the weighted sum of the terms, differentiable if
        `latents` requires grad), its terms, and the maps it was computed on."""
        maps = self.maps(latents, t, cond_embeds, step)
        masks = self.group_masks(tuple(maps.shape[1:])).to(maps.device)
        total, terms = layout_loss(maps, masks, self.settings.weights)
        return total, terms, maps

    def step_size(self, t) -> float:
        """strength * sqrt(1 - alpha_bar_t), LMD+'s schedule; within 2% of layout guidance's
        strength * sigma_t^2 (which is strength * (1 - alpha_bar_t) for this latent's scale)
        over SD's first ten of fifty steps."""
        alphas = getattr(self.scheduler, "alphas_cumprod", None)
        if alphas is None:
            return self.settings.strength
        alpha_bar = float(alphas[int(t)])
        return self.settings.strength * math.sqrt(1 - alpha_bar)

    def guide(
        self,
        latents: torch.Tensor,
        t,
        cond_embeds: torch.Tensor,
        step: int,
        before_iteration: Callable[[int], None] | None = None,
    ) -> torch.Tensor:
        """Up to `iterations` gradient steps on the latent at timestep t, stopping once the loss
        (the weighted mean of the terms, in [0, 1]) is under the threshold. The step descends
        the weighted sum, so each term moves with strength * its weight. The update is computed
        and applied in float32; a non-finite loss or gradient stops the step and keeps the last
        good latent. `before_iteration(j)` is called before each iteration (progress, and the
        place a cancelled run stops)."""
        report = StepReport(step)
        self.reports.append(report)
        z = latents.detach().float()
        scale = self.step_size(t)
        for iteration in range(self.settings.iterations):
            if before_iteration is not None:
                before_iteration(iteration)
            z.requires_grad_(True)
            with torch.enable_grad():
                loss, _, maps = self.loss(z, t, cond_embeds, step)
            self.last_maps = maps.detach()
            value = self.settings.weights.mean_of(float(loss.detach()))
            if not math.isfinite(value):
                report.nan_skipped = True
                break
            report.losses.append(value)
            if value < self.settings.loss_threshold:
                break
            (grad,) = torch.autograd.grad(loss, z)
            if not torch.isfinite(grad).all():
                report.nan_skipped = True
                break
            z = (z.detach() - scale * grad).detach()
            report.updates += 1
        return z.detach().to(latents.dtype)
