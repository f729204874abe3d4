"""StyleGAN-NADA's losses: the CLIP directional loss and adaptive layer selection."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..clip_guide import ClipGuide
from .micro_batch import micro_batches
from .stylegan2 import Generator

DIRECTION_FLOOR = 1e-3
"""Norm below which a direction is shrunk rather than blown up to unit length. At the first step
both generators are equal and every image direction is exactly zero; NADA nudges the image by 1e-6
instead. With the floor the loss is defined there and its gradient stays finite."""


def safe_unit(x: torch.Tensor, floor: float = DIRECTION_FLOOR) -> torch.Tensor:
    """x / sqrt(|x|^2 + floor^2) along the last dimension."""
    return x * torch.rsqrt(x.pow(2).sum(dim=-1, keepdim=True) + floor**2)


def text_direction(clip: ClipGuide, source: str, target: str) -> torch.Tensor:
    """Unit direction from the source to the target text in CLIP space (prompt-ensembled)."""
    return F.normalize(clip.text_feature(target) - clip.text_feature(source), dim=-1)


def image_directions(source_features: torch.Tensor, target_features: torch.Tensor) -> torch.Tensor:
    """Per-sample unit directions E_I(G_trg(w)) - E_I(G_src(w))."""
    return safe_unit(target_features - source_features)


def directional_loss(
    source_features: torch.Tensor, target_features: torch.Tensor, direction: torch.Tensor
) -> torch.Tensor:
    """1 - cos(image direction, text direction), averaged over the batch."""
    cosine = image_directions(source_features, target_features) @ direction
    return (1 - cosine).mean()


def global_loss(features: torch.Tensor, text_feature: torch.Tensor) -> torch.Tensor:
    """1 - cos(image, text): pulls images to the target text itself (used to pick layers)."""
    return (1 - features @ F.normalize(text_feature, dim=-1)).mean()


def select_layers(
    generator: Generator,
    w: torch.Tensor,
    clips: list[ClipGuide],
    target: str,
    k: int,
    steps: int = 1,
    lr: float = 0.01,
    noise: list[torch.Tensor] | None = None,
    micro_batch: int | None = None,
) -> list[int]:
    """NADA's adaptive layer freezing: optimise W+ alone for `steps` SGD steps on the global CLIP
    loss and return the `k` W+ entries that moved most (only those driving a convolution).
    The loss is a mean over samples, so micro-batches of `micro_batch` add up to its gradient."""
    start = w.detach().unsqueeze(1).repeat(1, generator.n_latent, 1)
    codes = start.clone().requires_grad_(True)
    optimizer = torch.optim.SGD([codes], lr=lr)
    was_training = [p.requires_grad for p in generator.parameters()]
    generator.requires_grad_(False)
    batch = codes.shape[0]
    try:
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            for part in micro_batches(batch, micro_batch or batch):
                chunk_noise = None if noise is None else [n[part] for n in noise]
                images = generator(codes[part], chunk_noise)
                loss = sum(
                    global_loss(c.image_features(images), c.text_feature(target)) for c in clips
                )
                (loss * ((part.stop - part.start) / batch)).backward()
            optimizer.step()
    finally:
        for parameter, flag in zip(generator.parameters(), was_training, strict=True):
            parameter.requires_grad_(flag)
    moved = (codes.detach() - start).abs().mean(dim=-1).mean(dim=0)
    moved = moved[: generator.selectable_latents]
    return sorted(torch.topk(moved, min(k, moved.numel())).indices.tolist())
