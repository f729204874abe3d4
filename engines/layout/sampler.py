"""The denoising loop: diffusers' StableDiffusionPipeline loop, step for step, with layout
guidance of the latent before each of the first guided steps whose latent the scheduler
keeps.

Follows diffusers src/diffusers/pipelines/stable_diffusion/pipeline_stable_diffusion.py
(StableDiffusionPipeline.__call__) at 0.42.1."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..base import Progress, no_progress
from .guidance import LayoutGuidance


@dataclass
class Sample:
    image: np.ndarray  # (height, width, 3) float32 in [0, 1], as the pipeline's output_type="np"
    nsfw: bool


def keeps_sample(scheduler) -> bool:
    """Whether the scheduler's next `step` starts from the latent it is given.

    PNDM's does not always: its second PLMS step (and three of every four Runge-Kutta steps
    when those are on) restarts from a latent it stored one step earlier and uses the given
    one only to evaluate the UNet, so a guidance update made just before it would be lost.
    The other diffusers schedulers always start from the given latent.
    """
    from diffusers import PNDMScheduler

    if not isinstance(scheduler, PNDMScheduler):
        return True
    if scheduler.counter < len(scheduler.prk_timesteps) and not scheduler.config.skip_prk_steps:
        return scheduler.counter % 4 == 0
    return scheduler.counter != 1


def sample(
    pipe,
    prompt: str,
    negative_prompt: str,
    height: int,
    width: int,
    steps: int,
    guidance_scale: float,
    generator: torch.Generator,
    guidance: LayoutGuidance | None = None,
    guided_steps: int = 0,
    progress: Progress = no_progress,
) -> Sample:
    """Generate one image. With `guidance` None this performs exactly the operations of
    `pipe(prompt, ...)` with the same generator, so the output is identical to the stock
    pipeline's. With guidance, the first `guided_steps` steps whose latent the scheduler keeps
    (see `keeps_sample`) are guided: with PNDM, steps 1 and 3 to 11 for ten guided steps."""
    device = pipe._execution_device
    unet, scheduler = pipe.unet, pipe.scheduler
    do_cfg = guidance_scale > 1 and unet.config.time_cond_proj_dim is None
    with torch.no_grad():
        prompt_embeds, negative_embeds = pipe.encode_prompt(
            prompt, device, 1, do_cfg, negative_prompt or None
        )
    embeds = torch.cat([negative_embeds, prompt_embeds]) if do_cfg else prompt_embeds

    scheduler.set_timesteps(steps, device=device)
    latents = pipe.prepare_latents(
        1, unet.config.in_channels, height, width, embeds.dtype, device, generator
    )
    extra_step_kwargs = pipe.prepare_extra_step_kwargs(generator, 0.0)

    timesteps = scheduler.timesteps
    guided = 0
    for i, t in enumerate(timesteps):
        # PNDM runs one more timestep than `steps` (its first is repeated): count the user's
        step_text = f"step {min(steps, i * steps // len(timesteps) + 1)}/{steps}"
        if guidance is not None and guided < guided_steps and keeps_sample(scheduler):

            def iteration(j: int, i=i, step_text=step_text) -> None:
                what = f"{step_text}: layout guidance, iteration {j + 1}"
                progress(i / len(timesteps), what)

            latents = guidance.guide(latents, t, prompt_embeds, i, iteration)
            guided += 1
        with torch.no_grad():
            model_input = torch.cat([latents] * 2) if do_cfg else latents
            model_input = scheduler.scale_model_input(model_input, t)
            noise_pred = unet(
                model_input,
                t,
                encoder_hidden_states=embeds,
                timestep_cond=None,
                cross_attention_kwargs=None,
                added_cond_kwargs=None,
                return_dict=False,
            )[0]
            if do_cfg:
                noise_uncond, noise_text = noise_pred.chunk(2)
                noise_pred = noise_uncond + guidance_scale * (noise_text - noise_uncond)
            latents = scheduler.step(
                noise_pred, t, latents, **extra_step_kwargs, return_dict=False
            )[0]
        progress((i + 1) / len(timesteps), step_text)

    with torch.no_grad():
        decoded = pipe.vae.decode(
            (latents / pipe.vae.config.scaling_factor).to(pipe.vae.dtype),
            return_dict=False,
            generator=generator,
        )[0]
        decoded, flagged = pipe.run_safety_checker(decoded, device, embeds.dtype)
        denormalize = [True] if flagged is None else [not f for f in flagged]
        image = pipe.image_processor.postprocess(
            decoded, output_type="np", do_denormalize=denormalize
        )
    return Sample(image=image[0], nsfw=bool(flagged and flagged[0]))
