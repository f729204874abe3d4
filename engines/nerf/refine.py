"""ED-NeRF's refinement layer: a few ResNet blocks and one self-attention layer mapping the
rendered latent onto the VAE latent of the view (VAE encodings are not 3D consistent, so the
field alone cannot match them). Residual and zero-initialised at the output: it starts as the
identity."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class RefinerConfig:
    channels: int = 64
    blocks: int = 3  # ResNet blocks; the attention layer sits after the first
    groups: int = 8
    heads: int = 4

    def to_dict(self) -> dict:
        return asdict(self)


class ResnetBlock(nn.Module):
    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return x + h


class SelfAttention(nn.Module):
    """Multi-head self-attention over the latent's h*w positions."""

    def __init__(self, channels: int, groups: int, heads: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.attention = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)
        out, _ = self.attention(tokens, tokens, tokens, need_weights=False)
        return x + out.transpose(1, 2).reshape(b, c, h, w)


class RefinementNet(nn.Module):
    """(B, 4, h, w) rendered latent -> (B, 4, h, w) latent like the VAE's."""

    def __init__(self, config: RefinerConfig, latent_channels: int = 4):
        super().__init__()
        self.config = config
        c, g = config.channels, config.groups
        self.conv_in = nn.Conv2d(latent_channels, c, 3, padding=1)
        layers: list[nn.Module] = [ResnetBlock(c, g), SelfAttention(c, g, config.heads)]
        layers += [ResnetBlock(c, g) for _ in range(config.blocks - 1)]
        self.body = nn.Sequential(*layers)
        self.norm_out = nn.GroupNorm(g, c)
        self.conv_out = nn.Conv2d(c, latent_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        h = self.body(self.conv_in(latent))
        return latent + self.conv_out(F.silu(self.norm_out(h)))
