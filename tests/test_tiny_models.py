"""The test harness's tiny models are the real classes with the real block structure."""

from __future__ import annotations

import torch
from tiny_models import tiny_amused_vqmodel, tiny_sd15_unet


def test_clip_tokenizer_matches_openai_ids(clip_tokenizer_dir):
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(clip_tokenizer_dir)
    # Ids of OpenAI CLIP's vocabulary: <|startoftext|> a photo of a cat <|endoftext|>
    assert tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert len(tokenizer) == 49408


def test_unet_has_sd15_attention_layout():
    unet = tiny_sd15_unet()
    cross = {name.rsplit(".attentions", 1)[0] for name in unet.attn_processors if "attn2" in name}
    assert cross == {
        "down_blocks.0",
        "down_blocks.1",
        "down_blocks.2",
        "mid_block",
        "up_blocks.1",
        "up_blocks.2",
        "up_blocks.3",
    }
    per_block = [n for n in unet.attn_processors if n.startswith("down_blocks.2") and "attn2" in n]
    assert len(per_block) == 2  # two transformer layers per block, as in SD 1.5


def test_sd15_folder_loads_through_registry(tiny_sd15_dir, local_model):
    from diffusers import StableDiffusionPipeline

    from engines.registry import Registry

    local_model("layout", "sd15", tiny_sd15_dir)
    resolved = Registry.load().resolve("layout", "sd15")
    pipe = StableDiffusionPipeline.from_pretrained(resolved.path)
    assert pipe.vae_scale_factor == 8
    image = pipe("a cat", num_inference_steps=1, height=64, width=64, output_type="np").images
    assert image.shape == (1, 64, 64, 3)


def test_vqmodel_downsamples_by_16_like_amused():
    vq = tiny_amused_vqmodel(num_codes=64)
    latents = vq.encode(torch.rand(1, 3, 64, 48)).latents
    assert latents.shape[-2:] == (4, 3)
    assert vq.quantize.embedding.weight.shape[0] == 64
