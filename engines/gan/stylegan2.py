"""The StyleGAN2 generator in plain PyTorch.

Module and parameter names follow rosinality/stylegan2-pytorch's `Generator`, so the published
`g_ema` state dicts (converted NVIDIA checkpoints, StyleGAN-NADA outputs) load with strict=True,
and what we save loads back into theirs. Resolution, mapping depth and channel widths come from a
`GeneratorConfig`, usually inferred from the state dict (see checkpoint.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .ops import blur_kernel_2d, fused_leaky_relu, upfirdn2d

BLUR_TAPS = (1, 3, 3, 1)


def config_f_channels(size: int, channel_multiplier: int = 2) -> dict[int, int]:
    """Channels per resolution of the published configs (config-f: multiplier 2)."""
    table = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
    return {
        res: width * (channel_multiplier if res >= 64 else 1)
        for res, width in table.items()
        if res <= size
    }


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything that shapes a generator's state dict."""

    size: int
    style_dim: int = 512
    n_mlp: int = 8
    channels: tuple[tuple[int, int], ...] = ()
    lr_mlp: float = 0.01

    @classmethod
    def published(
        cls, size: int, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2
    ) -> GeneratorConfig:
        channels = tuple(sorted(config_f_channels(size, channel_multiplier).items()))
        return cls(size=size, style_dim=style_dim, n_mlp=n_mlp, channels=channels)

    def __post_init__(self):
        if self.size < 4 or self.size & (self.size - 1):
            raise ValueError(f"size must be a power of two >= 4, got {self.size}")
        missing = [r for r in self.resolutions if r not in dict(self.channels)]
        if missing:
            raise ValueError(f"channels missing for resolutions {missing}")

    @property
    def log_size(self) -> int:
        return int(math.log2(self.size))

    @property
    def resolutions(self) -> list[int]:
        return [2**i for i in range(2, self.log_size + 1)]

    @property
    def num_noises(self) -> int:
        return (self.log_size - 2) * 2 + 1

    @property
    def n_latent(self) -> int:
        """How many W+ vectors synthesis reads (one per modulated layer pair, as in StyleGAN2)."""
        return self.log_size * 2 - 2

    def channel(self, resolution: int) -> int:
        return dict(self.channels)[resolution]


class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate: weights stored N(0, 1/lr_mul), scaled at run."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activate: bool = False,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight * self.scale)
        bias = self.bias * self.lr_mul
        if self.activate:
            return fused_leaky_relu(out, bias)
        return out + bias


class Blur(nn.Module):
    def __init__(self, pad: tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        self.register_buffer("kernel", blur_kernel_2d(BLUR_TAPS) * upsample_factor**2)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """2x FIR upsampling of the RGB skip path."""

    def __init__(self, factor: int = 2):
        super().__init__()
        self.register_buffer("kernel", blur_kernel_2d(BLUR_TAPS) * factor**2)
        excess = len(BLUR_TAPS) - factor
        self.pad = ((excess + 1) // 2 + factor - 1, excess // 2)
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class ModulatedConv2d(nn.Module):
    """Convolution whose weights are scaled per sample by the style, then (optionally)
    demodulated to unit output variance; a grouped convolution runs the whole batch at once."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
    ):
        super().__init__()
        if upsample:
            # Transposed conv (stride 2) grows k - 1 pixels; the blur pads trim back to 2x.
            excess = (len(BLUR_TAPS) - 2) - (kernel_size - 1)
            self.blur = Blur(pad=((excess + 1) // 2 + 1, excess // 2 + 1), upsample_factor=2)
        self.weight = nn.Parameter(
            torch.randn(1, out_channels, in_channels, kernel_size, kernel_size)
        )
        self.modulation = EqualLinear(style_dim, in_channels, bias_init=1.0)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.demodulate = demodulate
        self.upsample = upsample

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        batch, in_channels, height, width = x.shape
        k = self.kernel_size
        style = self.modulation(style).view(batch, 1, in_channels, 1, 1)
        weight = self.scale * self.weight * style
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
        x = x.reshape(1, batch * in_channels, height, width)
        if self.upsample:
            weight = weight.transpose(1, 2).reshape(batch * in_channels, self.out_channels, k, k)
            out = F.conv_transpose2d(x, weight.to(x.dtype), stride=2, groups=batch)
            out = out.view(batch, self.out_channels, *out.shape[-2:])
            return self.blur(out)
        weight = weight.reshape(batch * self.out_channels, in_channels, k, k)
        out = F.conv2d(x, weight.to(x.dtype), padding=k // 2, groups=batch)
        return out.view(batch, self.out_channels, *out.shape[-2:])


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            noise = x.new_empty(x.shape[0], 1, *x.shape[-2:]).normal_()
        return x + self.weight * noise


class FusedLeakyReLU(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias)


class ConstantInput(nn.Module):
    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.expand(batch, -1, -1, -1)


class StyledConv(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int,
        upsample: bool = False,
    ):
        super().__init__()
        self.conv = ModulatedConv2d(
            in_channels, out_channels, kernel_size, style_dim, upsample=upsample
        )
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channels)

    def forward(
        self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, style), noise))


class ToRGB(nn.Module):
    def __init__(self, in_channels: int, style_dim: int, upsample: bool = True):
        super().__init__()
        if upsample:
            self.upsample = Upsample()
        self.conv = ModulatedConv2d(in_channels, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(
        self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None
    ) -> torch.Tensor:
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class Generator(nn.Module):
    """Mapping network (`style`) and synthesis network, rosinality's attribute names."""

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.config = config
        dim = config.style_dim
        self.style = nn.Sequential(
            PixelNorm(),
            *[
                EqualLinear(dim, dim, lr_mul=config.lr_mlp, activate=True)
                for _ in range(config.n_mlp)
            ],
        )
        base = config.channel(4)
        self.input = ConstantInput(base)
        self.conv1 = StyledConv(base, base, 3, dim)
        self.to_rgb1 = ToRGB(base, dim, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for index in range(config.num_noises):
            side = 2 ** ((index + 5) // 2)
            self.noises.register_buffer(f"noise_{index}", torch.randn(1, 1, side, side))
        in_channels = base
        for resolution in config.resolutions[1:]:
            out_channels = config.channel(resolution)
            self.convs.append(StyledConv(in_channels, out_channels, 3, dim, upsample=True))
            self.convs.append(StyledConv(out_channels, out_channels, 3, dim))
            self.to_rgbs.append(ToRGB(out_channels, dim))
            in_channels = out_channels

    @property
    def n_latent(self) -> int:
        return self.config.n_latent

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        return self.style(z)

    @torch.no_grad()
    def mean_latent(self, count: int = 4096, seed: int = 0) -> torch.Tensor:
        """Mean W of `count` random z, the centre truncation pulls towards."""
        generator = torch.Generator().manual_seed(seed)
        z = torch.randn(count, self.config.style_dim, generator=generator)
        device = self.input.input.device
        return self.mapping(z.to(device)).mean(dim=0)

    def make_noise(
        self, batch: int, generator: torch.Generator | None = None
    ) -> list[torch.Tensor]:
        """Per-layer noise maps for `batch` images, drawn on the CPU (reproducible anywhere)."""
        device = self.input.input.device
        maps = []
        for index in range(self.config.num_noises):
            side = 2 ** ((index + 5) // 2)
            maps.append(torch.randn(batch, 1, side, side, generator=generator).to(device))
        return maps

    def fixed_noise(self) -> list[torch.Tensor]:
        return [getattr(self.noises, f"noise_{i}") for i in range(self.config.num_noises)]

    def synthesis(self, w: torch.Tensor, noise: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Images in [-1, 1] (roughly) from W (batch, dim) or W+ (batch, n_latent, dim)."""
        latent = w.unsqueeze(1).expand(-1, self.n_latent, -1) if w.ndim == 2 else w
        noise = noise if noise is not None else [None] * self.config.num_noises
        out = self.input(latent.shape[0])
        out = self.conv1(out, latent[:, 0], noise[0])
        skip = self.to_rgb1(out, latent[:, 1])
        index = 1
        for block, to_rgb in enumerate(self.to_rgbs):
            up, same = self.convs[2 * block], self.convs[2 * block + 1]
            out = up(out, latent[:, index], noise[2 * block + 1])
            out = same(out, latent[:, index + 1], noise[2 * block + 2])
            skip = to_rgb(out, latent[:, index + 2], skip)
            index += 2
        return skip

    def forward(self, w: torch.Tensor, noise: list[torch.Tensor] | None = None) -> torch.Tensor:
        return self.synthesis(w, noise)

    def synthesis_layers(self) -> list[nn.Module]:
        """What adaptation trains by default (as StyleGAN-NADA): constant input, conv1, convs.
        The mapping network and the ToRGB layers stay frozen."""
        return [self.input, self.conv1, *self.convs]

    def layers_for_latents(self, indices: list[int]) -> list[nn.Module]:
        """The modulated convolutions that W+ entries `indices` drive (entry 0: conv1, entry i:
        convs[i - 1]). The last entry only drives the final ToRGB and maps to nothing."""
        layers = [self.conv1, *self.convs]
        return [layers[i] for i in indices if 0 <= i < len(layers)]

    @property
    def selectable_latents(self) -> int:
        """How many W+ entries drive a trainable convolution."""
        return 1 + len(self.convs)


def truncate(w: torch.Tensor, mean_w: torch.Tensor, psi: float) -> torch.Tensor:
    """Pull W towards its mean: psi = 1 keeps W, psi = 0 gives the mean."""
    if psi >= 1.0:
        return w
    return mean_w + psi * (w - mean_w)
