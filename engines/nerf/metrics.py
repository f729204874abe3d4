"""What is measured: PSNR and SSIM on held-out views; CLIP direction similarity and CLIP
direction consistency (InstructPix2Pix / Instruct-NeRF2NeRF) for edits."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Of two uint8 or [0, 1] float images."""
    a, b = _unit(a), _unit(b)
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else -10.0 * float(np.log10(mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Gaussian-window SSIM (pytorch-msssim), window shrunk for small images."""
    from pytorch_msssim import ssim as ms_ssim

    x = torch.from_numpy(_unit(a)).permute(2, 0, 1)[None]
    y = torch.from_numpy(_unit(b)).permute(2, 0, 1)[None]
    window = min(11, (min(x.shape[-2:]) // 2) * 2 - 1)
    return float(ms_ssim(x, y, data_range=1.0, win_size=max(window, 3)))


def _unit(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    return image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)


def direction_similarity(
    original: torch.Tensor, edited: torch.Tensor, text_direction: torch.Tensor
) -> float:
    """Mean over views of cos(E_I(edited) - E_I(original), E_T(target) - E_T(source))."""
    image_directions = F.normalize(edited - original, dim=-1)
    return float((image_directions @ F.normalize(text_direction, dim=-1)).mean())


def direction_consistency(
    original: torch.Tensor, edited: torch.Tensor, closed: bool = False
) -> float:
    """Mean over neighbouring views i, i+1 of cos(E_I(edit_i) - E_I(orig_i),
    E_I(edit_i+1) - E_I(orig_i+1)): an edit that changes every view the same way scores 1.
    On a `closed` orbit the last view and the first are neighbours too."""
    directions = F.normalize(edited - original, dim=-1)
    if closed and len(directions) > 2:
        pairs, following = directions, torch.roll(directions, -1, dims=0)
    else:
        pairs, following = directions[:-1], directions[1:]
    return float((pairs * following).sum(-1).mean())


def image_batch(frames: list[np.ndarray]) -> torch.Tensor:
    """uint8 (H, W, 3) frames -> (N, 3, H, W) in [-1, 1], as ClipGuide takes them."""
    stacked = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255.0
    return stacked * 2 - 1
