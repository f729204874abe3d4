"""Loading the NeRF engine's parts, each when a request first needs it: the SD 1.5 VAE
(latents and decoding), the UNet with its text encoder and noise schedule (editing), and CLIP
ViT-B/32 or, when a request asks, ViT-L/14 (edit metrics)."""

from __future__ import annotations

from ..loading import pretrained, pretrained_files, unavailable
from ..parts import LoadContext, PartLoader


def load_vae(context: LoadContext):
    from diffusers import AutoencoderKL

    from .views import Decoder

    vae = pretrained(
        context.resolve("sd15"), AutoencoderKL, "vae", torch_dtype=context.device.vae_dtype
    )
    return Decoder(vae.to(context.device.torch_device))


def load_diffusion(context: LoadContext):
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from .guidance import DiffusionGuide

    resolved = context.resolve("sd15")
    device, dtype = context.device.torch_device, context.device.dtype
    unet = pretrained(resolved, UNet2DConditionModel, "unet", torch_dtype=dtype)
    text_encoder = pretrained(resolved, CLIPTextModel, "text_encoder", dtype=dtype)
    tokenizer = pretrained_files(resolved, CLIPTokenizer, "tokenizer")
    scheduler = pretrained_files(resolved, DDPMScheduler, "scheduler")
    return DiffusionGuide(unet.to(device), scheduler, text_encoder.to(device), tokenizer)


def clip_loader(component: str) -> PartLoader:
    """The loader of an open_clip folder (open_clip_config.json + weights); a folder that does
    not load (no config, no or truncated weights) is a model that is not available."""

    def load(context: LoadContext):
        from ..clip_guide import ClipGuide

        resolved = context.resolve(component)
        try:
            return ClipGuide.load(resolved.folder, context.device.torch_device, component)
        except (OSError, RuntimeError, ValueError, KeyError) as err:
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise unavailable(resolved, reason) from err

    return load


PARTS = {
    "vae": load_vae,
    "diffusion": load_diffusion,
    "clip": clip_loader("clip"),
    "clip_l14": clip_loader("clip_l14"),
}
