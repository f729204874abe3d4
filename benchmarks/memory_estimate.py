"""Our own estimate of an engine's GPU memory for one run: the weights, in the dtype the engine
holds them on a half-precision GPU, plus the largest single activation of the run, computed from
the loaded models' configs and the request. An estimate, not a measurement: it leaves out the
other live activations, autograd's saved tensors (but for GAN adaptation, which trains: its
step's memory is our fit from measured peaks, engines/gan/micro_batch.py) and the allocator's
slack, and counts attention
scores as materialised (what plain attention, attention probes and layout guidance do; SDPA's
fused kernels do not materialise them). It answers one question: does the default run need the
low-memory levers on a 12 GB card (`FITS_GB`)?
"""

from __future__ import annotations

from typing import Any

from engines.gan.micro_batch import bytes_per_sample

FITS_GB = 12.0
HALF_ENGINES = ("layout", "video", "nerf")
"""Engines whose diffusers/transformers models run in half precision on a GPU; the others keep
fp32 (compression: the range coder needs bit-identical probabilities; speech and the GAN
generators are loaded in fp32)."""
HALF = 2
FULL = 4


def _by_class(modules: dict[str, Any], *names: str) -> Any:
    for module in modules.values():
        if type(module).__name__ in names:
            return module
    return None


def weight_bytes(engine: str, modules: dict[str, Any]) -> int:
    """Parameters and buffers of every model the run loaded, at 2 bytes an element for a
    half-precision engine's diffusers/transformers models and 4 for the rest."""
    total = 0
    for module in modules.values():
        library = type(module).__module__.split(".")[0]
        half = engine in HALF_ENGINES and library in ("diffusers", "transformers")
        count = sum(p.numel() for p in module.parameters())
        count += sum(b.numel() for b in module.buffers())
        total += count * (HALF if half else FULL)
    return total


def sd_activations(
    unet, vae, batch: int, decoded: int, height: int, width: int, size: int = HALF
) -> dict[str, int]:
    """Stable Diffusion's candidates: the UNet's self-attention scores at its first (64x64 at
    512 px) level, the VAE decoder's largest feature map (the last upsampling, to full size)
    for `decoded` images at once, and the VAE mid-block's one-head attention."""
    tokens = (height // 8) * (width // 8)
    # SD 1.5's config names the head count attention_head_dim; UNetMotionModel's, num_attention_heads
    heads = unet.config.get("num_attention_heads") or unet.config["attention_head_dim"]
    heads = heads[0] if isinstance(heads, (list, tuple)) else heads
    channels = list(reversed(vae.config.block_out_channels))
    levels = len(channels)
    feature = max(
        channels[i] * (height >> (levels - 2 - i)) * (width >> (levels - 2 - i))
        for i in range(levels - 1)
    )
    return {
        "UNet self-attention scores": batch * heads * tokens**2 * size,
        "VAE decoder feature map": decoded * feature * size,
        "VAE mid-block attention": decoded * tokens**2 * size,
    }


def activations(engine: str, request: Any, modules: dict[str, Any]) -> dict[str, int]:
    """The largest activations' candidates of one run of `request`, in bytes, by name."""
    if engine == "layout":
        unet, vae = _by_class(modules, "UNet2DConditionModel"), _by_class(modules, "AutoencoderKL")
        return sd_activations(unet, vae, 2, 1, request.height, request.width)
    if engine == "video":
        unet = _by_class(modules, "UNetMotionModel", "UNet2DConditionModel")
        vae = _by_class(modules, "AutoencoderKL")
        decoded = 1 if getattr(vae, "use_slicing", False) else min(request.frames, 16)
        return sd_activations(unet, vae, 2 * request.frames, decoded, request.height, request.width)
    if engine == "nerf":
        unet, vae = _by_class(modules, "UNet2DConditionModel"), _by_class(modules, "AutoencoderKL")
        side = getattr(request, "resolution", None) or 512
        return sd_activations(unet, vae, 4, 1, side, side)  # DDS: edited + source, with CFG
    if engine == "gan":
        generator = _by_class(modules, "Generator")
        size = generator.config.size
        batch = request.batch or 4
        micro = request.micro_batch or batch
        return {
            "generator's last feature map": batch * generator.config.channel(size) * size**2 * FULL,
            # a training step: autograd's saved tensors and the backward's buffers, our fit
            f"adaptation step ({micro} samples at once)": micro * bytes_per_sample(size, "cuda"),
        }
    if engine == "compression":
        vq = _by_class(modules, "VQModel")
        side = 512
        channels = list(reversed(vq.config.block_out_channels))
        levels = len(channels)
        feature = max(channels[i] * (side >> (levels - 2 - i)) ** 2 for i in range(levels - 1))
        return {"VQ decoder feature map (512 px)": feature * FULL}
    if engine == "speech":
        wavlm = _by_class(modules, "WavLMModel")
        seconds = 15  # the longest clip the engine reads
        frames = seconds * 50
        return {
            "WavLM attention scores (15 s)": wavlm.config.num_attention_heads * frames**2 * FULL,
            "WavLM first convolution (15 s)": wavlm.config.conv_dim[0]
            * seconds
            * 16000
            // 5
            * FULL,
        }
    raise ValueError(f"no estimate for {engine}")


def estimate(engine: str, request: Any, modules: dict[str, Any]) -> dict[str, Any]:
    """{"weights_gb", "largest_activation", "largest_activation_gb", "total_gb", "fits_12gb"}."""
    weights = weight_bytes(engine, modules)
    candidates = activations(engine, request, modules)
    name = max(candidates, key=candidates.get)
    total = weights + candidates[name]
    return {
        "weights_gb": round(weights / 2**30, 3),
        "largest_activation": name,
        "largest_activation_gb": round(candidates[name] / 2**30, 3),
        "total_gb": round(total / 2**30, 3),
        "fits_12gb": total / 2**30 <= FITS_GB,
    }
