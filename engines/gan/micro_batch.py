"""How many samples one forward and backward pass of adaptation takes at once.

A step's batch may be split into micro-batches: the gradients are accumulated, so the update is
the whole batch's up to float rounding (`Adaptation.step`), while the activations autograd keeps
are those of one micro-batch. Without it StyleGAN2 at 1024 px does not fit 24 GB at SVL's batch
of 4 in fp32 (measured on a CPU: 5.5 GB a sample at 1024 px, 1.8 GB at 256 px, on top of the
weights).
"""

from __future__ import annotations

import math

BYTES_PER_SAMPLE_FIXED = 1.54 * 2**30
BYTES_PER_SAMPLE_PER_PIXEL = 4.0 * 2**10
"""Our fit of the memory one sample's adaptation step takes (source and trainable generator,
both CLIP critics, fp32, autograd's saved tensors and the backward's buffers), a + b x pixels,
through the peaks measured on a 2-core CPU (NADA, batch 1: 256 px 1.79 GB, 1024 px 5.52 GB above
the loaded models). Not measured on a GPU, where it should be lower (no oneDNN scratch)."""
HEADROOM = 0.6
"""The share of the free memory a step may plan to use: the fit is a fit, and the allocator,
the previews and the rest of the process need the remainder."""


def bytes_per_sample(size: int) -> int:
    """Our estimate of one sample's share of an adaptation step at `size` x `size` px."""
    return int(BYTES_PER_SAMPLE_FIXED + BYTES_PER_SAMPLE_PER_PIXEL * size * size)


def choose_micro_batch(
    batch: int, size: int, free_bytes: int | None, asked: int | None, low_memory: bool
) -> int:
    """The micro-batch a run uses: the one asked for (at most the batch); one sample under
    --low-memory; otherwise the whole batch when our estimate fits HEADROOM of the free memory
    (or the free memory is unknown), else as many samples as fit, at least one."""
    if asked is not None:
        return max(1, min(asked, batch))
    if low_memory:
        return 1
    if free_bytes is None:
        return batch
    fitting = math.floor(HEADROOM * free_bytes / bytes_per_sample(size))
    return max(1, min(batch, fitting))


def micro_batches(batch: int, micro: int) -> list[slice]:
    """The batch's samples in consecutive slices of at most `micro`, as even as possible."""
    count = math.ceil(batch / micro)
    edges = [round(i * batch / count) for i in range(count + 1)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]
