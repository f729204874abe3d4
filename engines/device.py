"""Choosing the device and dtype engines run on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")


@dataclass(frozen=True)
class DeviceSpec:
    """Where models live and the dtype their weights use there."""

    device: str
    dtype_name: str

    @property
    def torch_device(self) -> torch.device:
        import torch

        return torch.device(self.device)

    @property
    def dtype(self) -> torch.dtype:
        import torch

        return getattr(torch, self.dtype_name)

    @property
    def vae_dtype(self) -> torch.dtype:
        """Stable Diffusion's VAE (83 M parameters) overflows in fp16 and decodes NaN, so it
        stays in fp32 on an fp16 run; bf16 has fp32's range and is kept."""
        import torch

        return torch.float32 if self.dtype_name == "float16" else self.dtype

    @property
    def is_accelerator(self) -> bool:
        return not self.device.startswith("cpu")

    def describe(self) -> str:
        if self.dtype_name == "float16":
            return f"{self.device} (float16; Stable Diffusion's VAE in float32)"
        return f"{self.device} ({self.dtype_name})"


def choose_device(requested: str | None = "auto") -> DeviceSpec:
    """CUDA in bf16 (fp16 on cards before Ampere), then MPS in fp16, then CPU in fp32.

    `requested` may be "auto", "cpu", "mps", "cuda" or "cuda:N".
    """
    import torch

    requested = (requested or "auto").strip().lower()
    kind = requested.split(":", 1)[0]
    if kind not in DEVICE_CHOICES:
        raise InputError(
            f"Unknown device {requested!r}; choose one of auto, cuda, cuda:N, mps, cpu."
        )
    if kind == "auto":
        if torch.cuda.is_available():
            requested, kind = "cuda", "cuda"
        elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            requested, kind = "mps", "mps"
        else:
            requested, kind = "cpu", "cpu"
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise InputError("CUDA was requested but no CUDA device is visible to PyTorch.")
        index = int(requested.split(":", 1)[1]) if ":" in requested else 0
        if index >= torch.cuda.device_count():
            raise InputError(
                f"CUDA device {index} requested; only {torch.cuda.device_count()} present."
            )
        return DeviceSpec(f"cuda:{index}", "bfloat16" if _native_bf16() else "float16")
    if kind == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise InputError("MPS was requested but this PyTorch build cannot use it.")
        return DeviceSpec("mps", "float16")
    return DeviceSpec("cpu", "float32")


def _native_bf16() -> bool:
    """Whether the CUDA card does bf16 in hardware (Ampere, compute capability 8.0, and later).
    Turing and Volta only emulate it, which torch.cuda.is_bf16_supported() counts by default:
    slow, without flash attention, and more memory than fp16 there."""
    import torch

    return torch.cuda.is_bf16_supported(including_emulation=False)
