"""Loading the aMUSEd parts this codec uses, and fingerprinting the weights files refer to."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..device import DeviceSpec
from ..loading import pretrained, pretrained_files
from ..registry import ResolvedModel, remembered_sha256

WEIGHT_NAMES = (
    "diffusion_pytorch_model.safetensors",
    "model.safetensors",
    "diffusion_pytorch_model.bin",
    "pytorch_model.bin",
)
FINGERPRINTED = ("vqvae", "transformer", "text_encoder")
AESTHETIC_SCORE = 6.0  # aMUSEd's default micro-conditioning


@dataclass
class AmusedParts:
    """The VQGAN, the masked transformer, and its empty-prompt conditioning (computed once;
    the text encoder is not kept)."""

    vqvae: Any
    transformer: Any
    encoder_hidden_states: Any
    pooled_text_emb: Any
    mask_id: int
    model_id: str
    fingerprint: bytes
    device: DeviceSpec

    @property
    def codebook_size(self) -> int:
        return int(self.vqvae.config.num_vq_embeddings)

    @property
    def grid_multiple(self) -> int:
        """The transformer halves the token grid when it downsamples (aMUSEd-512 does)."""
        return 2 if self.transformer.config.downsample else 1


def load_amused(resolved: ResolvedModel, device: DeviceSpec) -> AmusedParts:
    import torch
    from diffusers import UVit2DModel, VQModel
    from transformers import CLIPTextModelWithProjection, CLIPTokenizer

    root = resolved.folder
    # fp32 everywhere: the range decoder must see bit-identical probabilities
    fp32 = {"torch_dtype": torch.float32}
    vqvae = pretrained(resolved, VQModel, "vqvae", **fp32).to(device.torch_device).eval()
    transformer = pretrained(resolved, UVit2DModel, "transformer", **fp32)
    transformer = transformer.to(device.torch_device).eval()
    tokenizer = pretrained_files(resolved, CLIPTokenizer, "tokenizer")
    text_encoder = pretrained(resolved, CLIPTextModelWithProjection, "text_encoder").to(
        device.torch_device, torch.float32
    )
    ids = tokenizer(
        [""],
        return_tensors="pt",
        padding="max_length",
        truncation=True,
        max_length=tokenizer.model_max_length,
    ).input_ids.to(device.torch_device)
    with torch.no_grad():
        output = text_encoder.eval()(ids, return_dict=True, output_hidden_states=True)
    encoder_hidden_states = output.hidden_states[-2].detach().clone()
    pooled_text_emb = output.text_embeds.detach().clone()
    del text_encoder, output
    return AmusedParts(
        vqvae=vqvae,
        transformer=transformer,
        encoder_hidden_states=encoder_hidden_states,
        pooled_text_emb=pooled_text_emb,
        mask_id=_mask_id(root, transformer),
        model_id=_model_id(resolved),
        fingerprint=model_fingerprint(root),
        device=device,
    )


def _mask_id(root: Path, transformer) -> int:
    config = root / "scheduler" / "scheduler_config.json"
    if config.is_file():
        return int(json.loads(config.read_text(encoding="utf-8"))["mask_token_id"])
    return int(transformer.config.vocab_size) - 1


def _model_id(resolved: ResolvedModel) -> str:
    if resolved.spec.local_path:
        return f"local/{Path(resolved.spec.local_path).name}"
    return resolved.spec.repo or "unknown"


def model_fingerprint(root: Path) -> bytes:
    """8 bytes of SHA-256 over the weights and configs in use: the model's identity in a file,
    the same for a Hub snapshot and a local copy of it."""
    digest = hashlib.sha256()
    for name in FINGERPRINTED:
        folder = root / name
        files = [folder / "config.json"]
        files += [folder / w for w in WEIGHT_NAMES if (folder / w).is_file()][:1]
        for path in files:
            if path.is_file():
                digest.update(f"{name}/{path.name}:{remembered_sha256(path)}\n".encode())
    scheduler = root / "scheduler" / "scheduler_config.json"
    if scheduler.is_file():
        digest.update(b"mask:" + str(json.loads(scheduler.read_text())["mask_token_id"]).encode())
    return digest.digest()[:8]
