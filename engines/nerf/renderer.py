"""Alpha compositing along rays: weights from transmittance (cumulative product), accumulated
opacity, depth, and any per-sample values (RGB or latents) over a background.

Values are never clamped: Stable Diffusion latents run to about +-4 after scaling (an RGB
renderer that clamps to [0, 1] would destroy them)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Compositing:
    weights: torch.Tensor  # (R, S)
    accumulation: torch.Tensor  # (R,) opacity, 1 - final transmittance
    depth: torch.Tensor  # (R,) expected distance of the visible surface


def composite_weights(sigma: torch.Tensor, deltas: torch.Tensor, t: torch.Tensor) -> Compositing:
    """alpha_i = 1 - exp(-sigma_i delta_i); T_i = prod_{j<i} (1 - alpha_j); w_i = T_i alpha_i."""
    alpha = 1.0 - torch.exp(-sigma * deltas)
    transmittance = torch.cumprod(
        torch.cat([torch.ones_like(alpha[:, :1]), 1.0 - alpha + 1e-10], dim=-1), dim=-1
    )
    weights = alpha * transmittance[:, :-1]
    accumulation = weights.sum(dim=-1)
    depth = (weights * t).sum(dim=-1)
    return Compositing(weights, accumulation, depth)


def composite_values(
    compositing: Compositing, values: torch.Tensor, background: torch.Tensor
) -> torch.Tensor:
    """(R, C): sum_i w_i v_i plus the background times the remaining transmittance."""
    blended = (compositing.weights[..., None] * values).sum(dim=-2)
    return blended + (1.0 - compositing.accumulation)[:, None] * background
