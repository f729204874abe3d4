"""What makes `ours` cheaper computes what it replaced: each conditional query's masked
reference attention once on its side of the box, not twice over all queries and blended
(the reference pass that stops at its last recording layer: test_video_engine.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from engines.video.control import (
    ControlSettings,
    SpatialSelfAttention,
    VideoControl,
)
from engines.video.split import QuerySplit
from engines.video.trajectory import BoxMasks

GRID, FRAMES, DIM = 12, 3, 32
# a box moving and growing, its edges through cells (partial cells), and one on cell edges
MOVING = np.array([(0.05, 0.1, 0.4, 0.5), (0.3, 0.2, 0.75, 0.7), (0.5, 0.1, 0.97, 0.93)])
ALIGNED = np.array([(3 / 12, 3 / 12, 6 / 12, 9 / 12)] * FRAMES)


def two_full_calls(inner, attn, cond, reference, settings, step, mask) -> torch.Tensor:
    """The formulation the split replaced: every query with the inside key bias and with the
    outside one, blended by its mask."""
    frames, tokens = cond.shape[:2]
    context = torch.cat([cond, reference.expand(frames, -1, -1)], dim=1)

    def biased(log_reference):
        bias = torch.zeros(frames, 1, context.shape[1])
        bias[..., tokens:] = log_reference
        return inner(attn, cond, context, bias)

    log_weight = math.log(settings.reference_strength)
    lam = settings.lambda_at(step)
    inside = biased(log_weight)
    outside = inner(attn, cond) if lam == 0 else biased(log_weight + math.log(lam))
    return mask[..., None] * inside + (1 - mask[..., None]) * outside


@pytest.mark.parametrize("boxes", [MOVING, ALIGNED], ids=["moving-partial-cells", "aligned"])
@pytest.mark.parametrize("step", [0, 5], ids=["hard-mask", "lambda-0.25"])
def test_split_reference_attention_equals_both_biases_over_all_queries_blended(boxes, step):
    torch.manual_seed(0)
    attn = Attention(DIM, heads=2, dim_head=16).eval().requires_grad_(False)
    settings = ControlSettings(
        reference_strength=1.5,
        reference_lambda_early=0.0,
        reference_lambda=0.25,
        reference_soften_step=4,
        reference_steps=(0, 10),
    )
    masks = BoxMasks.build(boxes, (GRID, GRID), cfg=True)
    control = VideoControl(settings, FRAMES, masks, step=step)
    generator = torch.Generator().manual_seed(1)
    hidden = torch.randn(2 * FRAMES, GRID * GRID, DIM, generator=generator)
    reference = torch.randn(1, 40, DIM, generator=generator)
    control.reference["x.attn1"] = reference
    inner = AttnProcessor2_0()

    out = SpatialSelfAttention("x.attn1", inner)(attn, hidden, video_control=control)

    cond_mask = masks.conditional(GRID * GRID)
    if boxes is MOVING:  # the case the split is for: frames with different query counts
        inside_counts = (cond_mask > 0).sum(1)
        assert len(set(inside_counts.tolist())) == FRAMES
        assert ((cond_mask > 0) & (cond_mask < 1)).any()
    expected_cond = two_full_calls(
        inner, attn, hidden[FRAMES:], reference, settings, step, cond_mask
    )
    torch.testing.assert_close(out[FRAMES:], expected_cond, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[:FRAMES], inner(attn, hidden[:FRAMES]))  # uncond: plain


def test_each_query_is_computed_once_per_side_it_needs_and_padding_is_never_read():
    mask = BoxMasks.build(MOVING, (GRID, GRID), cfg=False).conditional(GRID * GRID)
    split = QuerySplit.of(mask)
    inside, outside = mask > 0, mask < 1
    assert split.inside.shape[1] == inside.sum(1).max()
    assert split.outside.shape[1] == outside.sum(1).max()
    # fewer query rows than the two full calls (2 x queries per frame)
    assert split.inside.shape[1] + split.outside.shape[1] < 2 * GRID * GRID
    # results tagged by where they came from: (side, query) round-trips for every query
    n_in = split.inside.shape[1]
    ids = torch.arange(GRID * GRID, dtype=torch.float32).expand(FRAMES, -1)[..., None]
    tags = split.combine(ids, lambda q: q + 1000, lambda q: q + 2000)
    # a query inside reads its own inside result, outside its own outside result, and a cut
    # cell both, blended by its coverage
    own = ids[..., 0]
    expected = mask * (own + 1000) + (1 - mask) * (own + 2000)
    torch.testing.assert_close(tags[..., 0], expected)
    assert (split.from_inside[inside] < n_in).all() and (split.from_outside[outside] >= n_in).all()
