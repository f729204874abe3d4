"""CLIP (open_clip) as a frozen critic: prompt-ensembled text features, and image features that
pass gradients back to generator pixels."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


class ClipGuide:
    """One open_clip model with its tokenizer, frozen, in fp32."""

    def __init__(self, model: torch.nn.Module, tokenizer, name: str = "clip"):
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.name = name
        visual = model.visual
        size = visual.image_size
        self.image_size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        config = getattr(visual, "preprocess_cfg", None) or {}
        device = self.device
        self.mean = torch.tensor(config.get("mean", OPENAI_MEAN), device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(config.get("std", OPENAI_STD), device=device).view(1, 3, 1, 1)
        self._text_cache: dict[str, torch.Tensor] = {}

    @classmethod
    def load(cls, folder: str | Path, device: torch.device | str, name: str = "clip") -> ClipGuide:
        """Load an open_clip folder (open_clip_config.json + weights), as the Hub repos ship.
        Weights are required: open_clip itself would only warn and run a random CLIP."""
        import open_clip

        spec = f"local-dir:{Path(folder)}"
        model = open_clip.create_model(
            spec, device=device, precision="fp32", require_pretrained=True
        )
        return cls(model, open_clip.get_tokenizer(spec), name)

    @property
    def components(self) -> dict[str, torch.nn.Module]:
        """Its torch module by name, so the model manager counts its weights."""
        return {"model": self.model}

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def embed_dim(self) -> int:
        return int(self.model.text_projection.shape[-1])

    @torch.no_grad()
    def encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        """Unit-norm text features, one row per prompt."""
        tokens = self.tokenizer(prompts).to(self.device)
        return F.normalize(self.model.encode_text(tokens).float(), dim=-1)

    def text_feature(self, text: str) -> torch.Tensor:
        """E_T(text): the mean over the 80 ImageNet prompt templates of unit text features, as
        StyleGAN-NADA ensembles prompts. Not renormalised, so its norm is below one."""
        if text not in self._text_cache:
            from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

            prompts = [template(text) for template in OPENAI_IMAGENET_TEMPLATES]
            self._text_cache[text] = self.encode_prompts(prompts).mean(dim=0)
        return self._text_cache[text]

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """Unit-norm image features of generator output in [-1, 1]; differentiable."""
        x = (images.float() + 1) / 2
        if tuple(x.shape[-2:]) != self.image_size:
            shrinking = x.shape[-1] > self.image_size[-1]
            x = F.interpolate(
                x, size=self.image_size, mode="bicubic", align_corners=False, antialias=shrinking
            )
        x = (x - self.mean) / self.std
        return F.normalize(self.model.encode_image(x).float(), dim=-1)
