"""The box trajectory: keyframes interpolated to every frame, and per-frame box masks at each
resolution the UNet attends at, laid out like the UNet's batch (CFG halves, frames inside)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .requests import Keyframe


def frame_boxes(keyframes: Sequence[Keyframe], frames: int) -> np.ndarray:
    """(frames, 4) boxes (x0, y0, x1, y1): linear between keyframes, held before the first and
    after the last. Keyframes may come in any order."""
    if not keyframes:
        raise ValueError("no keyframes")
    ordered = sorted(keyframes, key=lambda k: k.frame)
    times = np.array([k.frame for k in ordered], dtype=np.float64)
    boxes = np.array([k.box() for k in ordered], dtype=np.float64)
    positions = np.arange(frames, dtype=np.float64)
    return np.stack([np.interp(positions, times, boxes[:, c]) for c in range(4)], axis=1)


def _coverage(low: float, high: float, cells: int, feather: float) -> np.ndarray:
    """Per cell of [0, 1] split into `cells`: the part of the cell inside [low, high]
    (partial cells stay partial); with `feather` > 0, a linear ramp of that width outside the
    edges, sampled at cell centres and never below the hard coverage."""
    edges = np.linspace(0.0, 1.0, cells + 1)
    inside = np.clip(np.minimum(edges[1:], high) - np.maximum(edges[:-1], low), 0, None)
    hard = inside * cells
    if feather <= 0:
        return hard
    centres = (edges[:-1] + edges[1:]) / 2
    distance = np.maximum(low - centres, 0) + np.maximum(centres - high, 0)
    return np.maximum(hard, np.clip(1 - distance / feather, 0, 1) * (distance > 0))


def box_mask(box: Sequence[float], height: int, width: int, soft_edge: float = 0.0) -> np.ndarray:
    """(height, width) mask of one box in [0, 1] coordinates on a height x width grid."""
    x0, y0, x1, y1 = box
    feather = soft_edge * max(x1 - x0, y1 - y0)
    rows = _coverage(y0, y1, height, feather)
    cols = _coverage(x0, x1, width, feather)
    return np.outer(rows, cols).astype(np.float32)


def unet_grids(latent_height: int, latent_width: int, levels: int = 4) -> list[tuple[int, int]]:
    """The (h, w) grids of the UNet's attention layers: the latent, then each stride-2
    downsampling (a 3x3 conv, stride 2, padding 1: ceil(n / 2))."""
    grids = [(latent_height, latent_width)]
    for _ in range(levels - 1):
        h, w = grids[-1]
        grids.append(((h + 1) // 2, (w + 1) // 2))
    return grids


@dataclass
class BoxMasks:
    """Per-frame box masks at every UNet resolution, in the UNet's batch layout.

    `by_tokens[n]` is (batch, h, w) for the grid with n = h * w tokens, where batch is
    frames (no CFG) or 2 * frames: the unconditional half first, then the conditional half,
    frame by frame inside each, as AnimateDiff's UNet lays out `cat([latents] * 2)`.
    """

    frames: int
    cfg: bool
    by_tokens: dict[int, torch.Tensor]
    boxes: np.ndarray | None = None  # (frames, 4) the boxes the masks were drawn from

    @classmethod
    def build(
        cls,
        boxes: np.ndarray,
        latent_hw: tuple[int, int],
        cfg: bool,
        soft_edge: float = 0.0,
        device=None,
        dtype=torch.float32,
    ) -> BoxMasks:
        by_tokens = {}
        for h, w in unet_grids(*latent_hw):
            per_frame = np.stack([box_mask(box, h, w, soft_edge) for box in boxes])
            masks = torch.from_numpy(per_frame)
            if cfg:
                masks = torch.cat([masks, masks])
            by_tokens[h * w] = masks.to(device=device, dtype=dtype)
        return cls(len(boxes), cfg, by_tokens, np.asarray(boxes, dtype=np.float64))

    def grid(self, tokens: int) -> torch.Tensor:
        """(batch, h, w) masks of the grid with `tokens` positions."""
        return self.by_tokens[tokens]

    def shape(self, tokens: int) -> tuple[int, int]:
        """(h, w) of the grid with `tokens` positions."""
        return tuple(self.by_tokens[tokens].shape[1:])

    def flat(self, tokens: int) -> torch.Tensor:
        """(batch, tokens) masks of that grid, row-major like the attention's queries."""
        return self.by_tokens[tokens].flatten(1)

    def conditional(self, tokens: int) -> torch.Tensor:
        """(frames, tokens): the masks of the conditional half of the batch."""
        return self.flat(tokens)[-self.frames :]
