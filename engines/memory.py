"""The memory an engine holds: the bytes of the torch weights reachable from its parts, what
an out-of-memory error looks like, and the device's own figures for status. torch is imported
only when asked, so the app starts without it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from .device import DeviceSpec
from .walk import find

MODULE_SEARCH_DEPTH = 4
"""How far `torch_modules` looks into containers, dataclasses and objects' attributes."""


def torch_modules(values: Iterable[Any]) -> Iterator[Any]:
    """Every torch module held in `values`: directly, in dicts, lists and tuples, in a
    diffusers pipeline's or our Parts' `components`, in dataclass fields or in plain objects'
    attributes, up to MODULE_SEARCH_DEPTH levels down; each one once."""
    import torch

    yield from find(values, lambda x: isinstance(x, torch.nn.Module), MODULE_SEARCH_DEPTH)


def weight_bytes(*values: Any) -> int:
    """Bytes held by the parameters and buffers of every torch module in `values`, each tensor
    counted once."""
    seen: set[int] = set()
    total = 0
    for module in torch_modules(values):
        for tensor in [*module.parameters(), *module.buffers()]:
            if id(tensor) not in seen:
                seen.add(id(tensor))
                total += tensor.numel() * tensor.element_size()
    return total


def is_out_of_memory(err: BaseException) -> bool:
    import torch

    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in str(err).lower()


def device_memory(device: DeviceSpec) -> dict[str, float]:
    """The device's figures for status: a GPU's allocated, free and total memory, or the
    process's peak resident memory on a CPU."""
    import torch

    if device.device.startswith("cuda"):
        index = torch.device(device.device).index or 0
        free, total = torch.cuda.mem_get_info(index)
        return {
            "gpu_allocated_mb": round(torch.cuda.memory_allocated(index) / 2**20, 1),
            "gpu_free_mb": round(free / 2**20, 1),
            "gpu_total_mb": round(total / 2**20, 1),
        }
    from .peak_memory import process_peak_rss_mb

    rss_mb = process_peak_rss_mb()
    return {} if rss_mb is None else {"process_peak_rss_mb": rss_mb}


def free_bytes(device: Any) -> int | None:
    """Memory a run could still take on `device` (a torch.device): a GPU's free memory, or the
    machine's available memory for a CPU (psutil); None when it cannot be told."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device.index or 0)[0])
    if device.type != "cpu":
        return None
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)
