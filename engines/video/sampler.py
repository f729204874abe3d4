"""The denoising loop: diffusers' AnimateDiffPipeline loop, step for step, with an optional
reference pass of the noised subject latent before each controlled step.

With `control` None this performs exactly the operations of `pipe(prompt, num_frames=...,
ip_adapter_image=..., output_type="np")` with the same generator (tested bit for bit).

Follows diffusers src/diffusers/pipelines/animatediff/pipeline_animatediff.py
(AnimateDiffPipeline.__call__) at 0.42.1."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..base import Progress, no_progress
from .control import ReferenceRecorded, VideoControl, self_attention_layers


@dataclass
class Reference:
    """The subject's clean latent (1, C, 1, h, w) and the fixed noise it is noised with."""

    latent: torch.Tensor
    noise: torch.Tensor


def encode_reference(pipe, image, seed: int) -> Reference:
    """The subject canvas through the VAE (the posterior mean), and noise from its own
    generator, so the video's initial noise is the stock pipeline's."""
    device = pipe._execution_device
    pixels = pipe.video_processor.preprocess(image).to(device, pipe.vae.dtype)
    with torch.no_grad():
        latent = pipe.vae.encode(pixels).latent_dist.mean * pipe.vae.config.scaling_factor
    latent = latent[:, :, None].to(pipe.unet.dtype)  # one frame, for the UNet
    generator = torch.Generator("cpu").manual_seed(seed + 1)
    noise = torch.randn(latent.shape, generator=generator, dtype=torch.float32)
    return Reference(latent, noise.to(device, latent.dtype))


def sample(
    pipe,
    prompt: str,
    negative_prompt: str,
    frames: int,
    height: int,
    width: int,
    steps: int,
    guidance_scale: float,
    generator: torch.Generator,
    ip_image=None,
    control: VideoControl | None = None,
    reference: Reference | None = None,
    progress: Progress = no_progress,
) -> np.ndarray:
    """(frames, height, width, 3) float32 in [0, 1]."""
    device = pipe._execution_device
    unet, scheduler = pipe.unet, pipe.scheduler
    do_cfg = guidance_scale > 1
    with torch.no_grad():
        prompt_embeds, negative_embeds = pipe.encode_prompt(
            prompt, device, 1, do_cfg, negative_prompt or None
        )
        cond_embeds = prompt_embeds
        if do_cfg:
            prompt_embeds = torch.cat([negative_embeds, prompt_embeds])
        prompt_embeds = prompt_embeds.repeat_interleave(repeats=frames, dim=0)
        image_embeds = None
        if ip_image is not None:
            image_embeds = pipe.prepare_ip_adapter_image_embeds(ip_image, None, device, 1, do_cfg)

    scheduler.set_timesteps(steps, device=device)
    timesteps = scheduler.timesteps
    latents = pipe.prepare_latents(
        1, unet.config.in_channels, frames, height, width, prompt_embeds.dtype, device, generator
    )
    extra_step_kwargs = pipe.prepare_extra_step_kwargs(generator, 0.0)
    added_cond_kwargs = {"image_embeds": image_embeds} if image_embeds is not None else None
    reference_cond = (
        {"image_embeds": [e[-1:] for e in image_embeds]} if image_embeds is not None else None
    )
    if control is not None and reference is not None:
        control.reference_layers = self_attention_layers(unet)

    for i, t in enumerate(timesteps):
        kwargs = None
        with torch.no_grad():
            if control is not None:
                control.step = i
                if reference is not None and control.active("reference"):
                    _reference_pass(
                        unet, scheduler, reference, t, cond_embeds, reference_cond, control
                    )
                kwargs = {"video_control": control}
            model_input = torch.cat([latents] * 2) if do_cfg else latents
            model_input = scheduler.scale_model_input(model_input, t)
            noise_pred = unet(
                model_input,
                t,
                encoder_hidden_states=prompt_embeds,
                cross_attention_kwargs=kwargs,
                added_cond_kwargs=added_cond_kwargs,
            ).sample
            if do_cfg:
                noise_uncond, noise_text = noise_pred.chunk(2)
                noise_pred = noise_uncond + guidance_scale * (noise_text - noise_uncond)
            latents = scheduler.step(noise_pred, t, latents, **extra_step_kwargs).prev_sample
        progress((i + 1) / len(timesteps), f"step {i + 1}/{len(timesteps)}")

    with torch.no_grad():
        video = pipe.decode_latents(latents.to(pipe.vae.dtype), decode_chunk_size=16)
        video = pipe.video_processor.postprocess_video(video=video, output_type="np")
    pipe.maybe_free_model_hooks()
    return video[0]


def _reference_pass(unet, scheduler, reference, t, cond_embeds, added_cond_kwargs, control):
    """The noised subject latent through the UNet as a one-frame video on the conditional
    prompt; the spatial self-attention layers record their inputs into `control.reference`,
    and the pass stops at the last of them (nothing after it is read)."""
    noisy = scheduler.add_noise(reference.latent, reference.noise, t[None])
    noisy = scheduler.scale_model_input(noisy, t)
    control.reference.clear()
    control.recording = True
    try:
        unet(
            noisy,
            t,
            encoder_hidden_states=cond_embeds,
            cross_attention_kwargs={"video_control": control},
            added_cond_kwargs=added_cond_kwargs,
        )
    except ReferenceRecorded:
        pass
    finally:
        control.recording = False
