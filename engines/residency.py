"""Which engines stay loaded: one policy, a budget of weight memory. Engines stay while the
weights of all of them fit it; when one would not, the least recently used others are released
first. The engine in use always stays, even alone over the budget. A CPU's budget is one
engine (ONE_ENGINE), a CUDA device's 85% of its memory, a ZeroGPU Space's unlimited."""

from __future__ import annotations

import math

from .device import DeviceSpec

ONE_ENGINE = 0
"""A budget that holds one engine: every engine takes at least a byte (below), so any second
one is over it."""
UNLIMITED = math.inf
DEFAULT_GPU_SHARE = 0.85  # of a CUDA device's total memory


def default_budget(device: DeviceSpec) -> float:
    """85% of a CUDA device's memory; one engine on a CPU or MPS."""
    if device.device.startswith("cuda"):
        import torch

        total = torch.cuda.get_device_properties(device.torch_device).total_memory
        return int(DEFAULT_GPU_SHARE * total)
    return ONE_ENGINE


def to_release(
    engine: str, resident: list[str], weights: dict[str, int], budget: float
) -> list[str]:
    """The engines of `resident` (least recently used first) to release so that `engine`, at
    the weight it had when last measured, fits `budget` with those that stay. An engine whose
    weights are not measured yet, or hold nothing, takes a byte: it still takes a place."""
    others = [name for name in resident if name != engine]
    held = sum(max(1, weights.get(name, 0)) for name in [*others, engine])
    released = []
    for other in others:
        if held <= budget:
            break
        held -= max(1, weights.get(other, 0))
        released.append(other)
    return released


def describe(budget: float) -> str:
    if budget == ONE_ENGINE:
        return "one engine at a time"
    if budget == UNLIMITED:
        return "every engine stays loaded"
    return f"engines share {budget / 2**20:.0f} MB of weight memory, least recently used released first"
