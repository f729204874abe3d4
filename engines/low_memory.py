"""The low-memory levers, for the engines whose default run does not fit a 12 GB GPU by our
estimate (benchmarks/memory_estimate.py, printed by benchmarks/full_size.py): subject video, its
16 frames of 512 px self-attention at classifier-free guidance (batch 32) being ~8.6 GB of
scores on top of ~4.5 GB of weights. Layout, NeRF, GAN, compression and speech stay under 12 GB
without them; GAN adaptation has its own lever all the same, for CPUs, where a 1024 px step
takes about 5.5 GB a sample in fp32 (22 GB at SVL's batch of 4; 8.4 GB in all on an H200), and
for smaller cards.

The levers, each applied where it changes memory and not the result:
- VAE slicing (video): the VAE decodes one frame at a time instead of 16;
- memory-efficient attention (video): PyTorch's SDPA may use only its fused kernels (flash,
  memory-efficient, cuDNN), never the one that materialises the scores;
- model CPU offload (video): each model moves to the GPU while it runs (accelerate);
- sequential CPU offload (video), the last resort below SEQUENTIAL_BELOW_GB of GPU memory: each
  layer moves while it runs, very slow;
- micro-batches (GAN): a step's batch runs one sample at a time, gradients added
  (engines/gan/micro_batch.py; without the flag the GAN engine already does so on a CPU, and on
  a GPU splits a batch that would not fit the free memory by its estimate).
Offload needs a CUDA device; on a CPU the others are applied (they leave the output as it is,
tests/test_low_memory.py, tests/test_gan_micro_batch.py) and the offloads are not.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from .device import DeviceSpec

LEVERS = {
    "vae_slicing": "VAE slicing (one frame decoded at a time)",
    "efficient_attention": "memory-efficient attention (SDPA fused kernels only)",
    "model_offload": "model CPU offload",
    "sequential_offload": "sequential CPU offload",
    "micro_batches": "micro-batches of one sample (gradients added over the batch)",
}
OFFLOADS = ("model_offload", "sequential_offload")
ENGINES = ("video", "gan")
"""The engines the levers apply to (the others fit 12 GB by our estimate)."""
GAN_LEVERS = ("micro_batches",)
SEQUENTIAL_BELOW_GB = 8.0
"""Model offload still holds the largest model (the video UNet with its motion modules, ~2.6 GB
in half precision) and a step's activations on the GPU; below this much GPU memory we take
sequential offload instead. Our threshold from the estimate, not measured on such a card."""


def gpu_total_gb(device: DeviceSpec) -> float | None:
    if not device.device.startswith("cuda"):
        return None
    import torch

    return torch.cuda.get_device_properties(device.torch_device).total_memory / 2**30


@dataclass(frozen=True)
class LowMemory:
    """Whether the studio runs with the levers on (`--low-memory`), for every run."""

    on: bool = False

    def levers(self, device: DeviceSpec, asked: bool = False, offload: bool = False) -> tuple:
        """The video levers a run applies on `device`: all of them when the studio's flag or the
        run (`asked`) wants low memory; `offload` alone (video's "CPU offload") is model
        offload only. Offloads only on CUDA."""
        cuda = device.device.startswith("cuda")
        chosen: list[str] = []
        if self.on or asked:
            chosen.append("vae_slicing")
            if cuda or device.device == "cpu":  # MPS: no fused-kernel choice
                chosen.append("efficient_attention")
            if cuda:
                total = gpu_total_gb(device)
                small = total is not None and total < SEQUENTIAL_BELOW_GB
                chosen.append("sequential_offload" if small else "model_offload")
        elif offload and cuda:
            chosen.append("model_offload")
        return tuple(chosen)

    def describe(self, device: DeviceSpec) -> dict:
        """What the System panel shows: on or off, and the levers each engine gets."""
        per_engine = {"video": self.levers(device), "gan": GAN_LEVERS}
        shown = {"on": self.on, "engines": {}}
        if self.on:
            shown["engines"] = {
                engine: [LEVERS[name] for name in per_engine[engine]] for engine in ENGINES
            }
            if not device.device.startswith("cuda"):
                shown["note"] = "CPU offload needs a CUDA device: not applied on " + device.device
        return shown


def describe_line(shown: dict) -> str:
    """One line for a person: which levers are on, for which engines."""
    if not shown.get("on"):
        return "off (--low-memory, or video's Advanced 'low memory' per run)"
    text = "; ".join(f"{engine}: {', '.join(names)}" for engine, names in shown["engines"].items())
    return f"on: {text}" + (f" ({shown['note']})" if shown.get("note") else "")


@contextlib.contextmanager
def efficient_attention(on: bool) -> Iterator[None]:
    """Within it, scaled_dot_product_attention runs only fused kernels (no score matrix); the
    call fails rather than silently materialising the scores when none takes its inputs."""
    if not on:
        yield
        return
    from torch.nn.attention import SDPBackend, sdpa_kernel

    fused = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]
    fused += [SDPBackend.CUDNN_ATTENTION] if hasattr(SDPBackend, "CUDNN_ATTENTION") else []
    with sdpa_kernel(fused):
        yield
