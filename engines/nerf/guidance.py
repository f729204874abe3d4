"""Score guidance from the Stable Diffusion 1.5 UNet: Delta Denoising Score (Hertz et al.) and,
for comparison, Score Distillation Sampling.

DDS noises the edited latent and the source latent with the same noise and timestep, and
returns eps_hat(z_t^tgt, y_tgt) - eps_hat(z_t^src, y_src), each with classifier-free guidance:
the prompt-independent noisy part of SDS's eps_hat - eps cancels, so unedited regions stay.
With the same prompt and the same latent the gradient is exactly zero."""

from __future__ import annotations

from dataclasses import dataclass

import torch

DDS, SDS = "dds", "sds"
CONSTANT, ONE_MINUS_ALPHA_BAR = "1", "1 - alpha_bar"
WEIGHTINGS = (CONSTANT, ONE_MINUS_ALPHA_BAR)
"""w(t): 1 (the DDS notebook, its SDS baseline too) or 1 - alpha_bar_t (DreamFusion,
threestudio)."""


@dataclass
class Prompts:
    """Text embeddings (1, 77, D): the unconditional one, the source and the target."""

    empty: torch.Tensor
    source: torch.Tensor
    target: torch.Tensor


class DiffusionGuide:
    """The UNet, its noise schedule and the text encoder, frozen."""

    def __init__(self, unet, scheduler, text_encoder, tokenizer):
        self.unet = unet.eval().requires_grad_(False)
        self.text_encoder = text_encoder.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.alphas_cumprod = scheduler.alphas_cumprod.float()
        self.train_steps = int(scheduler.config.num_train_timesteps)

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    @torch.no_grad()
    def embed(self, text: str) -> torch.Tensor:
        tokens = self.tokenizer(
            [text],
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids.to(self.text_encoder.device)
        return self.text_encoder(tokens)[0].to(self.dtype)

    def prompts(self, source: str, target: str) -> Prompts:
        return Prompts(self.embed(""), self.embed(source), self.embed(target))

    def weight(self, t: int, weighting: str) -> float:
        """w(t) of the guidance gradient."""
        if weighting == ONE_MINUS_ALPHA_BAR:
            return float(1 - self.alphas_cumprod[t])
        return 1.0

    def noised(self, latent: torch.Tensor, noise: torch.Tensor, t: int) -> torch.Tensor:
        ab = self.alphas_cumprod[t].to(latent.device)
        return ab.sqrt() * latent + (1 - ab).sqrt() * noise

    @torch.no_grad()
    def guided_noise(
        self,
        noisy: torch.Tensor,
        t: int,
        conditions: list[torch.Tensor],
        empty: torch.Tensor,
        scale: float,
    ) -> torch.Tensor:
        """eps_hat for each (noisy[i], conditions[i]), classifier-free guided, in one batch:
        unconditional and conditional rows side by side."""
        count = noisy.shape[0]
        latents = torch.cat([noisy, noisy]).to(self.dtype)
        text = torch.cat([empty.expand(count, -1, -1), torch.cat(conditions)])
        timestep = torch.full((2 * count,), t, device=self.device, dtype=torch.long)
        eps = self.unet(latents.to(self.device), timestep, encoder_hidden_states=text).sample
        unconditional, conditional = eps.float().chunk(2)
        return unconditional + scale * (conditional - unconditional)


def dds_gradient(
    guide: DiffusionGuide,
    edited: torch.Tensor,
    source: torch.Tensor,
    prompts: Prompts,
    t: int,
    noise: torch.Tensor,
    scale: float = 7.5,
) -> torch.Tensor:
    """eps_hat(z_t(edited), target) - eps_hat(z_t(source), source prompt); same noise and t."""
    noisy = torch.cat([guide.noised(edited.detach(), noise, t), guide.noised(source, noise, t)])
    eps = guide.guided_noise(noisy, t, [prompts.target, prompts.source], prompts.empty, scale)
    return (eps[:1] - eps[1:]).to(edited.dtype)


def sds_gradient(
    guide: DiffusionGuide,
    edited: torch.Tensor,
    prompts: Prompts,
    t: int,
    noise: torch.Tensor,
    scale: float = 7.5,
) -> torch.Tensor:
    """eps_hat(z_t(edited), target) - eps: Score Distillation Sampling's gradient (w(t) = 1;
    the caller scales it for other weightings)."""
    noisy = guide.noised(edited.detach(), noise, t)
    eps = guide.guided_noise(noisy, t, [prompts.target], prompts.empty, scale)
    return (eps - noise).to(edited.dtype)


def guidance_loss(latent: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """(z * grad.detach()).sum() / (h * w): its gradient with respect to z is grad / (h w)."""
    h, w = latent.shape[-2:]
    return (latent * gradient.detach()).sum() / (h * w)
