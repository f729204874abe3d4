"""Distortion measured between the original and a decoded image (both uint8 RGB)."""

from __future__ import annotations

import math

import numpy as np

MS_SSIM_MIN_SIDE = 161
"""pytorch-msssim's 5-scale MS-SSIM with an 11-px window needs sides above 160 px."""
SSIM_MIN_SIDE = 11


def psnr(reference: np.ndarray, decoded: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over all RGB values (8-bit peak 255)."""
    _same_shape(reference, decoded)
    mse = np.mean((reference.astype(np.float64) - decoded.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else float(10 * math.log10(255.0**2 / mse))


def ms_ssim(reference: np.ndarray, decoded: np.ndarray) -> tuple[float | None, str]:
    """(value, kind): 5-scale MS-SSIM when the image is large enough; single-scale SSIM for
    small images (kind says which); (None, reason) for images under 11 px."""
    import torch
    from pytorch_msssim import ms_ssim as _ms_ssim
    from pytorch_msssim import ssim as _ssim

    _same_shape(reference, decoded)
    side = min(reference.shape[:2])
    if side < SSIM_MIN_SIDE:
        return None, f"not measured (under {SSIM_MIN_SIDE} px)"
    x = torch.from_numpy(reference).permute(2, 0, 1)[None].double()
    y = torch.from_numpy(decoded).permute(2, 0, 1)[None].double()
    if side >= MS_SSIM_MIN_SIDE:
        return float(_ms_ssim(x, y, data_range=255)), "MS-SSIM"
    return float(_ssim(x, y, data_range=255)), "SSIM (image too small for MS-SSIM)"


def _same_shape(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
