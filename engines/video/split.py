"""Queries split by the box: attention whose keys are biased one way for the queries inside a
frame's box and another way outside, computed once per query instead of twice.

A per-query key bias would need a (queries x keys) mask per call (gigabytes at 512 px), so
the biased attention is two delegated calls with a per-key bias each. Blending two calls over
all queries by the mask pays for every query twice; here each call gets only the queries it
decides: those with mask > 0 for the inside bias, those with mask < 1 for the outside one
(cells the box's edge cuts through are in both, and blended as before). Frames have
different numbers of queries in the box, so each side is padded to its longest frame with
repeats of a query it already has; the padding's results are never read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class QuerySplit:
    """One grid's conditional queries by side of the box; `inside`, `outside`: (frames, n)
    query positions; `from_inside`, `from_outside`: (frames, queries), where each query's
    result of each side sits in cat([inside results, outside results]) (a query on one side
    only reads that side twice); `mask`: (frames, queries, 1) the box mask."""

    inside: torch.Tensor
    outside: torch.Tensor
    from_inside: torch.Tensor
    from_outside: torch.Tensor
    mask: torch.Tensor

    @classmethod
    def of(cls, mask: torch.Tensor) -> QuerySplit:
        """mask: (frames, queries) in [0, 1]."""
        inside, from_inside = _side(mask > 0, 0)
        outside, from_outside = _side(mask < 1, inside.shape[1])
        # a query on one side only: both readings from that side
        from_inside = torch.where(from_inside < 0, from_outside, from_inside)
        from_outside = torch.where(from_outside < 0, from_inside, from_outside)
        return cls(inside, outside, from_inside, from_outside, mask[..., None])

    def combine(
        self,
        states: torch.Tensor,
        inside_call: Callable[[torch.Tensor], torch.Tensor],
        outside_call: Callable[[torch.Tensor], torch.Tensor],
    ) -> torch.Tensor:
        """mask * inside_call(queries) + (1 - mask) * outside_call(queries), each call given
        (frames, n, channels) queries of its side (a side with none is not called)."""
        results = [
            call(_take(states, positions))
            for positions, call in ((self.inside, inside_call), (self.outside, outside_call))
            if positions.shape[1]
        ]
        joined = torch.cat(results, dim=1) if len(results) > 1 else results[0]
        mask = self.mask.to(joined.dtype)
        inside = _take(joined, self.from_inside)
        outside = _take(joined, self.from_outside)
        return mask * inside + (1 - mask) * outside


def _side(chosen: torch.Tensor, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(frames, n) positions of the chosen queries of each frame, in order, padded with the
    frame's first; (frames, queries) each chosen query's slot + offset, -1 for the others."""
    frames, queries = chosen.shape
    counts = chosen.sum(1)
    width = int(counts.max()) if frames else 0
    order = torch.sort((~chosen).to(torch.uint8), dim=1, stable=True).indices[:, :width]
    slots = torch.arange(width, device=chosen.device).expand(frames, width)
    valid = slots < counts[:, None]
    positions = torch.where(valid, order, order[:, :1])
    where = torch.full((frames, queries + 1), -1, dtype=torch.long, device=chosen.device)
    # padding writes into a spare last column, dropped after
    where.scatter_(1, torch.where(valid, order, queries), slots + offset)
    return positions, where[:, :queries]


def _take(states: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """states[f, positions[f]] for each frame f: (frames, n, channels)."""
    return states.gather(1, positions[..., None].expand(-1, -1, states.shape[-1]))
