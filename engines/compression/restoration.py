"""Lost-token restoration: drop a seeded fraction of the tokens, then fill them either naively
(nearest received token) or with the masked transformer, MaskGIT-style."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import InputError
from .codebook import ReducedCodebook
from .schedule import cosine_boundaries
from .token_model import UNKNOWN, MaskedTokenModel

MAX_LOSS = 0.95
DEFAULT_STEPS = 8


def lose_tokens(shape: tuple[int, int], fraction: float, seed: int) -> np.ndarray:
    """A boolean (h, w) mask of round(fraction * h * w) lost positions, chosen by `seed`;
    at least one token is always kept."""
    if not 0.0 <= fraction <= MAX_LOSS:
        raise InputError(f"The lost fraction must be between 0 and {MAX_LOSS}, not {fraction}.")
    count = shape[0] * shape[1]
    lost_count = min(round(fraction * count), count - 1)
    rng = np.random.Generator(np.random.PCG64(seed))
    lost = np.zeros(count, dtype=bool)
    lost[rng.choice(count, size=lost_count, replace=False)] = True
    return lost.reshape(shape)


def nearest_fill(tokens: np.ndarray, lost: np.ndarray) -> np.ndarray:
    """The naive baseline: every lost token copies the nearest received one."""
    from scipy.ndimage import distance_transform_edt

    if not lost.any():
        return tokens.copy()
    rows, cols = distance_transform_edt(lost, return_distances=False, return_indices=True)
    return tokens[rows, cols]


def maskgit_restore(
    model: MaskedTokenModel,
    tokens: np.ndarray,
    lost: np.ndarray,
    codebook: ReducedCodebook,
    steps: int = DEFAULT_STEPS,
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """Fill lost tokens iteratively: each pass predicts every still-missing position and keeps
    the most confident predictions (argmax cluster), as many as the cosine schedule allows;
    the last pass fills the rest. Deterministic (no sampling)."""
    known = np.where(lost, UNKNOWN, tokens)
    remaining = np.flatnonzero(lost)
    filled = 0
    bounds = cosine_boundaries(len(remaining), steps) if len(remaining) else []
    for step, bound in enumerate(bounds):
        probs = model.probabilities(known, codebook, remaining)
        best = probs.argmax(axis=1)
        confidence = probs[np.arange(len(remaining)), best]
        chosen = np.argsort(-confidence, kind="stable")[: bound - filled]
        known.reshape(-1)[remaining[chosen]] = best[chosen]
        remaining = np.delete(remaining, chosen)
        filled = bound
        if progress:
            progress((step + 1) / len(bounds))
    return known
