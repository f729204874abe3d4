"""Layout losses on attention maps: mass inside the box, leakage outside it, and a boundary
term pulling the map's extent to the box edges. All maps are float32, shaped (groups, h, w)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossWeights:
    inside: float = 1.0
    outside: float = 1.0
    boundary: float = 0.5

    @property
    def total(self) -> float:
        return self.inside + self.outside + self.boundary


def feature_sizes(latent_hw: tuple[int, int], levels: int = 4) -> list[tuple[int, int]]:
    """Spatial sizes of the UNet's levels: each downsampling halves a side, rounding up."""
    sizes = [latent_hw]
    for _ in range(levels - 1):
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    return sizes


def size_for_pixels(pixels: int, latent_hw: tuple[int, int]) -> tuple[int, int]:
    """The (h, w) of a UNet level with `pixels` positions."""
    for h, w in feature_sizes(latent_hw, levels=8):
        if h * w == pixels:
            return h, w
    raise ValueError(f"No UNet level of a {latent_hw} latent has {pixels} positions.")


def box_coverage(
    boxes: Sequence[Sequence[float]], image_hw: tuple[int, int], map_hw: tuple[int, int]
):
    """For each box (x0, y0, x1, y1 in image pixels), the fraction of each map cell it covers:
    a (boxes, h, w) tensor in [0, 1]. Coarse maps keep partial cells partial."""
    (height, width), (h, w) = image_hw, map_hw

    def overlap(low: float, high: float, cells: int, extent: int) -> torch.Tensor:
        edges = torch.linspace(0, extent, cells + 1, dtype=torch.float64)
        covered = torch.minimum(edges[1:], torch.tensor(high)) - torch.maximum(
            edges[:-1], torch.tensor(low)
        )
        return (covered.clamp(min=0) / (edges[1:] - edges[:-1])).float()

    masks = [
        overlap(y0, y1, h, height)[:, None] * overlap(x0, x1, w, width)[None, :]
        for x0, y0, x1, y1 in boxes
    ]
    return torch.stack(masks) if masks else torch.zeros(0, h, w)


def aggregate_maps(
    cross: Sequence[torch.Tensor],
    self_: Sequence[torch.Tensor] | None,
    latent_hw: tuple[int, int],
) -> torch.Tensor:
    """Cross-attention maps (pixels, tokens) of several layers -> one (tokens, h, w) map at the
    finest recorded resolution. Layers are averaged per resolution; with self-attention
    (pixels, pixels) of the same layers, each resolution's map becomes A_ref = S @ A."""
    by_size: dict[int, list[int]] = {}
    for index, probs in enumerate(cross):
        by_size.setdefault(probs.shape[0], []).append(index)
    finest = size_for_pixels(max(by_size), latent_hw)
    maps = []
    for pixels, indices in by_size.items():
        attention = torch.stack([cross[i].float() for i in indices]).mean(0)
        if self_ is not None:
            affinity = torch.stack([s.float() for s in self_ if s.shape[0] == pixels]).mean(0)
            attention = affinity @ attention
        h, w = size_for_pixels(pixels, latent_hw)
        attention = attention.T.reshape(1, -1, h, w)
        if (h, w) != finest:
            attention = F.interpolate(attention, size=finest, mode="bilinear", align_corners=False)
        maps.append(attention[0])
    return torch.stack(maps).mean(0)


def phrase_maps(token_maps: torch.Tensor, groups: Sequence[Sequence[int]]) -> torch.Tensor:
    """(tokens, h, w) -> (groups, h, w): each token map normalised to sum 1 over the image
    (the start token's mass would otherwise swamp it), then averaged over the group's tokens."""
    maps = []
    for tokens in groups:
        selected = token_maps[list(tokens)]
        selected = selected / selected.flatten(1).sum(1).clamp(min=1e-12)[:, None, None]
        maps.append(selected.mean(0))
    return torch.stack(maps)


def _peak_normalised(maps: torch.Tensor) -> torch.Tensor:
    return maps / maps.flatten(1).amax(1).clamp(min=1e-12)[:, None, None]


def inside_loss(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(1 - attention mass inside the box)^2 per group; maps sum to 1."""
    return (1 - (maps * masks).flatten(1).sum(1)).pow(2)


def outside_loss(maps: torch.Tensor, masks: torch.Tensor, top: float = 0.2) -> torch.Tensor:
    """Mean of the strongest `top` fraction of the peak-normalised map outside the box."""
    peak = _peak_normalised(maps) * (1 - masks)
    outside_cells = (1 - masks).flatten(1).sum(1)
    losses = []
    for values, cells in zip(peak.flatten(1), outside_cells, strict=True):
        k = max(1, math.ceil(top * float(cells)))
        losses.append(
            values.topk(min(k, values.numel())).values.mean() if cells > 0.5 else values.sum() * 0
        )
    return torch.stack(losses)


def boundary_loss(
    maps: torch.Tensor, masks: torch.Tensor, sharpness: float = 20.0, level: float = 0.5
) -> torch.Tensor:
    """L1 between the soft-thresholded map's row and column profiles and the box's: the map's
    extent must start and end at the box edges, on both axes."""
    soft = torch.sigmoid(sharpness * (_peak_normalised(maps) - level))
    rows = (soft.amax(2) - masks.amax(2)).abs().mean(1)
    cols = (soft.amax(1) - masks.amax(1)).abs().mean(1)
    return (rows + cols) / 2


def layout_loss(
    maps: torch.Tensor, masks: torch.Tensor, weights: LossWeights
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted mean of the three terms, averaged over groups; in [0, 1]. Also the terms."""
    terms = {
        "inside": (weights.inside, inside_loss),
        "outside": (weights.outside, outside_loss),
        "boundary": (weights.boundary, boundary_loss),
    }
    total = maps.new_zeros(())
    parts = {}
    for name, (weight, term) in terms.items():
        if weight > 0:
            value = term(maps, masks).mean()
            total = total + weight * value
            parts[name] = float(value.detach())
    return total / max(weights.total, 1e-12), parts
