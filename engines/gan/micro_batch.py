"""How many samples one forward and backward pass of adaptation takes at once.

A step's batch may be split into micro-batches: the gradients are accumulated, so the update is
the whole batch's up to float rounding (`Adaptation.step`), while the activations autograd keeps
are those of one micro-batch. On a CPU, StyleGAN2 at 1024 px does not fit 24 GB at SVL's batch of
4 without it (oneDNN's fp32 kernels: 5.5 GB a sample at 1024 px).
"""

from __future__ import annotations

import math

GB = 2**30
KB = 2**10
PER_SAMPLE_FIT = {
    "cpu": (1.54 * GB, 4.0 * KB),
    "cuda": (0.60 * GB, 1.14 * KB),
}
"""Our fit, a + b x pixels, of the memory one sample's adaptation step takes (source and
trainable generator, the CLIP critics, fp32: autograd's saved tensors and the backward's
buffers), through measured peaks above the loaded models. CPU: NADA at batch 1 with both CLIP
critics on 2 cores, 256 px 1.79 GB and 1024 px 5.52 GB (2026-12-02). CUDA: SVL at batch 4 with
ViT-B/32 on an H200 (docs/gan.md: 3.7 and 8.4 GB peak), less the weights, per sample: 0.68
and 1.8 GB. Other devices use the CPU's (the larger)."""
CPU_ONE_AT_A_TIME = True
"""On a CPU one sample at a time is also the faster: the modulated convolutions run the batch as
a grouped convolution (one group a sample), which oneDNN does more slowly than a plain one. SVL,
batch 4, both critics, 256 px, 2-core Xeon: 22-23 s a step at 1 sample at a time, 25-30 s at 2,
26-37 s at 4; peak RSS 4.9, 6.5 and 9.2 GB (2026-12-02)."""
HEADROOM = 0.6
"""The share of the free memory a step may plan to use: the fit is a fit, and the allocator,
the previews and the rest of the process need the remainder."""


def bytes_per_sample(size: int, device_type: str = "cpu") -> int:
    """Our estimate of one sample's share of an adaptation step at `size` x `size` px."""
    fixed, per_pixel = PER_SAMPLE_FIT.get(device_type, PER_SAMPLE_FIT["cpu"])
    return int(fixed + per_pixel * size * size)


def choose_micro_batch(
    batch: int,
    size: int,
    free_bytes: int | None,
    asked: int | None,
    low_memory: bool,
    device_type: str = "cpu",
) -> int:
    """The micro-batch a run uses: the one asked for (at most the batch); one sample under
    --low-memory or on a CPU (CPU_ONE_AT_A_TIME); otherwise the whole batch when our estimate
    fits HEADROOM of the free memory (or the free memory is unknown), else as many samples as
    fit, at least one."""
    if asked is not None:
        return max(1, min(asked, batch))
    if low_memory or (CPU_ONE_AT_A_TIME and device_type == "cpu"):
        return 1
    if free_bytes is None:
        return batch
    fitting = math.floor(HEADROOM * free_bytes / bytes_per_sample(size, device_type))
    return max(1, min(batch, fitting))


def micro_batches(batch: int, micro: int) -> list[slice]:
    """The batch's samples in consecutive slices of at most `micro`, as even as possible."""
    count = math.ceil(batch / micro)
    edges = [round(i * batch / count) for i in range(count + 1)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]
