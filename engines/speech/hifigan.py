"""The HiFi-GAN generator that kNN-VC's vocoder uses: WavLM features (50 Hz) -> 16 kHz audio.

Our own module, written to the architecture of the published kNN-VC vocoder (HiFi-GAN V1 with a
linear input layer, `config_v1_wavlm.json` of bshall/knn-vc), so that its checkpoint
`prematch_g_02500000.pt` loads strictly: the parameter names and shapes are those of
`torch.nn.utils.weight_norm` layers (`weight_g`, `weight_v`), which we compute ourselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelUnavailable

LEAKY_SLOPE = 0.1


@dataclass(frozen=True)
class HiFiGANConfig:
    """Defaults are the published kNN-VC vocoder's (16 kHz output, hop 320 = WavLM's)."""

    feature_dim: int = 1024  # WavLM-Large hidden size
    hidden_dim: int = 512
    upsample_initial_channel: int = 512
    upsample_rates: tuple[int, ...] = (10, 8, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (20, 16, 4, 4)
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilations: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    sample_rate: int = 16000

    @property
    def hop_length(self) -> int:
        hop = 1
        for rate in self.upsample_rates:
            hop *= rate
        return hop


class WeightNormConv1d(nn.Module):
    """A (transposed) 1-D convolution whose weight is `g * v / ||v||` (norm over all but dim 0),
    stored as `weight_g`, `weight_v`, `bias` like torch's classic `weight_norm`."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        padding: int = 0,
        transposed: bool = False,
    ):
        super().__init__()
        shape = (
            (in_channels, out_channels, kernel_size)
            if transposed
            else (out_channels, in_channels, kernel_size)
        )
        self.weight_v = nn.Parameter(torch.randn(shape) * 0.01)
        self.weight_g = nn.Parameter(self.weight_v.detach().norm(dim=(1, 2), keepdim=True))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.stride, self.dilation, self.padding = stride, dilation, padding
        self.transposed = transposed

    def weight(self) -> torch.Tensor:
        return self.weight_v * (self.weight_g / self.weight_v.norm(dim=(1, 2), keepdim=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.transposed:
            return F.conv_transpose1d(x, self.weight(), self.bias, self.stride, self.padding)
        return F.conv1d(x, self.weight(), self.bias, self.stride, self.padding, self.dilation)


def _same_padding(kernel_size: int, dilation: int) -> int:
    return (kernel_size * dilation - dilation) // 2


class ResidualBlock(nn.Module):
    """HiFi-GAN's ResBlock1: per dilation, a dilated conv then a plain conv, added back."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]):
        super().__init__()
        self.convs1 = nn.ModuleList(
            WeightNormConv1d(
                channels, channels, kernel_size, dilation=d, padding=_same_padding(kernel_size, d)
            )
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            WeightNormConv1d(channels, channels, kernel_size, padding=_same_padding(kernel_size, 1))
            for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dilated, plain in zip(self.convs1, self.convs2, strict=True):
            x = x + plain(F.leaky_relu(dilated(F.leaky_relu(x, LEAKY_SLOPE)), LEAKY_SLOPE))
        return x


class HiFiGANGenerator(nn.Module):
    """(batch, frames, feature_dim) features -> (batch, frames * hop_length) waveform in [-1, 1]."""

    def __init__(self, config: HiFiGANConfig = HiFiGANConfig()):
        super().__init__()
        self.config = config
        self.lin_pre = nn.Linear(config.feature_dim, config.hidden_dim)
        self.conv_pre = WeightNormConv1d(
            config.hidden_dim, config.upsample_initial_channel, 7, padding=3
        )
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        channels = config.upsample_initial_channel
        for rate, kernel in zip(config.upsample_rates, config.upsample_kernel_sizes, strict=True):
            self.ups.append(
                WeightNormConv1d(
                    channels,
                    channels // 2,
                    kernel,
                    stride=rate,
                    padding=(kernel - rate) // 2,
                    transposed=True,
                )
            )
            channels //= 2
            for size, dilations in zip(
                config.resblock_kernel_sizes, config.resblock_dilations, strict=True
            ):
                self.resblocks.append(ResidualBlock(channels, size, dilations))
        self.conv_post = WeightNormConv1d(channels, 1, 7, padding=3)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(self.lin_pre(features).transpose(1, 2))
        kernels = len(self.config.resblock_kernel_sizes)
        for index, upsample in enumerate(self.ups):
            x = upsample(F.leaky_relu(x, LEAKY_SLOPE))
            blocks = self.resblocks[index * kernels : (index + 1) * kernels]
            x = sum(block(x) for block in blocks) / kernels
        # HiFi-GAN's last activation uses torch's default slope (0.01), not LEAKY_SLOPE
        x = self.conv_post(F.leaky_relu(x))
        return torch.tanh(x).squeeze(1)


def config_for_state_dict(state_dict: dict[str, torch.Tensor]) -> HiFiGANConfig:
    """The published structure, with the widths a state dict has (tiny test vocoders are
    narrower; the layer counts, kernels, strides and dilations are the published ones)."""
    try:
        hidden_dim, feature_dim = state_dict["lin_pre.weight"].shape
        initial = state_dict["conv_pre.weight_v"].shape[0]
    except KeyError as err:
        raise ValueError(f"not a kNN-VC HiFi-GAN generator state dict (no {err})") from err
    return HiFiGANConfig(
        feature_dim=int(feature_dim),
        hidden_dim=int(hidden_dim),
        upsample_initial_channel=int(initial),
    )


def load_hifigan(path: str | Path, source: str = "speech.vocoder") -> HiFiGANGenerator:
    """Load a kNN-VC generator checkpoint (`{"generator": state_dict}` or a bare state dict)
    with `weights_only=True`, strictly."""
    path = Path(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ModelUnavailable(
            source,
            str(path),
            "Re-download it or point the override at the right file.",
            f"cannot read the checkpoint: {type(err).__name__}",
        ) from err
    state_dict = checkpoint.get("generator", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state_dict, dict):
        raise ModelUnavailable(
            source,
            str(path),
            "Use kNN-VC's prematch_g_02500000.pt.",
            "the file holds no generator state dict",
        )
    try:
        generator = HiFiGANGenerator(config_for_state_dict(state_dict))
        generator.load_state_dict(state_dict, strict=True)
    except (ValueError, RuntimeError) as err:
        raise ModelUnavailable(
            source,
            str(path),
            "Use kNN-VC's prematch_g_02500000.pt.",
            " ".join(str(err).split())[:400],
        ) from err
    return generator.eval()
