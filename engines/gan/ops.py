"""StyleGAN2's two custom CUDA ops, written as plain PyTorch: FIR resampling and biased leaky ReLU.

The original implementation compiles these at import time and fails without nvcc; these versions
run on any device and are differentiable by autograd.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

LEAKY_SLOPE = 0.2
LEAKY_GAIN = math.sqrt(2.0)


def blur_kernel_2d(taps: Sequence[float]) -> torch.Tensor:
    """A separable 2-D FIR kernel from 1-D taps, normalised to sum to one."""
    kernel = torch.tensor(list(taps), dtype=torch.float32)
    kernel = kernel[None, :] * kernel[:, None]
    return kernel / kernel.sum()


def upfirdn2d(
    x: torch.Tensor,
    kernel: torch.Tensor,
    up: int = 1,
    down: int = 1,
    pad: tuple[int, int] = (0, 0),
) -> torch.Tensor:
    """Upsample by zero insertion, pad, convolve with `kernel`, then keep every `down`-th pixel.

    Same padding convention as StyleGAN2: `pad = (before, after)` on both axes, applied after
    upsampling; negative values crop.
    """
    batch, channels, height, width = x.shape
    if up > 1:
        x = x.reshape(batch, channels, height, 1, width, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(batch, channels, height * up, width * up)
    before, after = pad
    x = F.pad(x, [before, after, before, after])
    # conv2d is a correlation: flip the kernel to convolve.
    weight = torch.flip(kernel, [0, 1]).to(x.dtype)[None, None]
    x = F.conv2d(x.reshape(batch * channels, 1, *x.shape[-2:]), weight)
    x = x.reshape(batch, channels, *x.shape[-2:])
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Add a per-channel bias, leaky ReLU (slope 0.2), and rescale by sqrt(2) to keep variance."""
    if bias is not None:
        x = x + bias.view(1, -1, *([1] * (x.ndim - 2)))
    return F.leaky_relu(x, LEAKY_SLOPE) * LEAKY_GAIN
