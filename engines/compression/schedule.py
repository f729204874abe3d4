"""Fixed, platform-independent schedules: which token positions each transformer pass codes,
and how many lost tokens each restoration step fills."""

from __future__ import annotations

import math

import numpy as np

DEFAULT_PASSES = 12
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(values: np.ndarray) -> np.ndarray:
    """SplitMix64 of each value: a fixed pseudo-random order needing no RNG library, so every
    machine and every NumPy version agrees on it."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64) * _GOLDEN + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        return z ^ (z >> np.uint64(31))


def cosine_boundaries(total: int, steps: int) -> list[int]:
    """Cumulative counts after each step, following MaskGIT's cosine schedule: few tokens in the
    first steps (little context), many in the last. Strictly increasing, ending at `total`."""
    steps = max(1, min(steps, total))
    bounds = []
    for step in range(steps):
        done = round(total * (1.0 - math.cos(math.pi / 2 * (step + 1) / steps)))
        floor = bounds[-1] + 1 if bounds else 1
        bounds.append(min(max(done, floor), total - (steps - 1 - step)))
    return bounds


def coding_groups(height: int, width: int, passes: int = DEFAULT_PASSES) -> list[np.ndarray]:
    """Flat positions of an (height, width) grid split into `passes` groups (fewer if the grid
    is smaller): a fixed pseudo-random order, cut by the cosine schedule. Each group is sorted."""
    count = height * width
    order = np.argsort(_splitmix64(np.arange(count)), kind="stable")
    groups, start = [], 0
    for end in cosine_boundaries(count, passes):
        groups.append(np.sort(order[start:end]))
        start = end
    return groups
