"""Peak memory, measured the same way for every engine and named the same in every metrics
dict: `peak_memory_mb`, on CUDA the peak bytes torch allocated on the device since
`reset_peak`, elsewhere the process's peak resident memory so far (it cannot be reset)."""

from __future__ import annotations

import sys
from typing import Any

PEAK_MEMORY = "peak_memory_mb"


def _cuda(device: Any):
    """The torch CUDA device `device` names (a torch.device, "cuda:N", a DeviceSpec), or None."""
    import torch

    device = getattr(device, "torch_device", device)
    device = torch.device(device)
    return device if device.type == "cuda" else None


def reset_peak(device: Any) -> None:
    """Start measuring the peak on `device` now (CUDA only: a process's resident peak stays)."""
    cuda = _cuda(device)
    if cuda is not None:
        import torch

        torch.cuda.reset_peak_memory_stats(cuda)


def process_peak_rss_mb() -> float | None:
    """The process's peak resident memory in MB (None where `resource` is missing: Windows)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def peak_memory_mb(device: Any) -> float | None:
    """The peak memory of a run on `device`, in MB (see the module's docstring)."""
    cuda = _cuda(device)
    if cuda is None:
        return process_peak_rss_mb()
    import torch

    return round(torch.cuda.max_memory_allocated(cuda) / 2**20, 1)


def peak_memory(device: Any) -> dict[str, float]:
    """{"peak_memory_mb": ...} for a metrics dict; empty when it cannot be measured."""
    peak = peak_memory_mb(device)
    return {} if peak is None else {PEAK_MEMORY: peak}
