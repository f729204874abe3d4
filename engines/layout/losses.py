"""Layout losses on attention maps: mass inside the box, leakage outside it, and a boundary
term pulling the map's extent to the box edges. All maps are float32, shaped (groups, h, w),
each summing to 1 over the image.

Every term is measured on the map as it is (no division by its own peak), so that lowering any
of them, alone or mixed, moves attention mass into the box; tests/test_method_fidelity.py
checks this on maps whose blob starts outside, across, or inside the box."""

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

    def mean_of(self, weighted_sum: float) -> float:
        """The weighted mean of the terms (in [0, 1]) from their weighted sum."""
        return weighted_sum / max(self.total, 1e-12)


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


def inside_loss(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(1 - attention mass inside the box)^2 per group; maps sum to 1 (layout guidance's term)."""
    return (1 - (maps * masks).flatten(1).sum(1)).pow(2)


def outside_loss(maps: torch.Tensor, masks: torch.Tensor, top: float = 0.2) -> torch.Tensor:
    """Attention mass held by the strongest `top` fraction of the cells outside the box.

    BoxDiff's outer term on absolute values: the map sums to 1 and nothing rescales it, so the
    only way down is to take mass away from the strongest leaks (a misplaced object first). A
    map normalised by its own peak would instead reward sharpening a peak that sits outside.
    In [0, 1]: near 1 when the phrase sits, concentrated, outside its box.
    """
    outside = maps * (1 - masks)
    outside_cells = (1 - masks).flatten(1).sum(1)
    losses = []
    for values, cells in zip(outside.flatten(1), outside_cells, strict=True):
        if cells < 0.5:  # the box covers the image: nothing can leak
            losses.append(values.sum() * 0)
            continue
        k = min(values.numel(), max(1, math.ceil(top * float(cells))))
        losses.append(values.topk(k).values.sum())
    return torch.stack(losses)


def box_marginals(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The box's row and column profiles as distributions: uniform over the rows (columns) the
    box covers, partial cells in proportion. Shapes (groups, h) and (groups, w)."""
    rows, cols = masks.amax(2), masks.amax(1)
    return rows / rows.sum(1, keepdim=True), cols / cols.sum(1, keepdim=True)


def boundary_loss(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Where the map's extent starts and ends on each axis, against the box edges: the total
    variation distance between the map's row (column) marginal and the box's, averaged over
    the two axes. In [0, 1]; 0 only when all the mass lies within the box's rows and columns and
    spreads over them evenly.

    Unlike a soft-thresholded, peak-normalised map it does not saturate: every cell of the box's
    rows and columns that lacks mass gets the same pull, so an empty box receives a gradient
    (-1/2 per cell in map units, a quarter of the inside term's -2(1 - mass) when empty)."""
    row_target, col_target = box_marginals(masks)
    rows = (maps.sum(2) - row_target).abs().sum(1)
    cols = (maps.sum(1) - col_target).abs().sum(1)
    return (rows + cols) / 4


def layout_loss(
    maps: torch.Tensor, masks: torch.Tensor, weights: LossWeights
) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted sum of the three terms, each averaged over groups, and the terms.

    The sum is not divided by the weights: a latent step of strength s moves each term as a
    step of s * weight on that term alone, so strength 30 with the inside weight 1 is layout
    guidance's scale 30. `weights.mean_of(total)` gives the weighted mean, in [0, 1]."""
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
    return total, parts
