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


def test_the_ip_adapter_keeps_vit_h_shape_relations(tiny_video_dirs, local_model):
    """As ViT-H/14 (hidden 1280, projection 1024) with SD's 768-wide cross-attention: three
    different widths, 4 image tokens for the plain adapter and 16 for Plus, so feeding Plus the
    projected embeddings (or plain the hidden states), or a hard-coded token count, fails."""
    from PIL import Image
    from tiny_video import CROSS_DIM, IP_PLAIN_TOKENS, IP_PLUS_TOKENS

    from engines.device import choose_device
    from engines.parts import LoadContext
    from engines.registry import Registry
    from engines.video.loading import load_ip_encoder, load_pipeline, use_ip_adapter

    for name in ("sd15", "motion_adapter", "ip_adapter"):
        local_model("video", name, tiny_video_dirs[name])
    context = LoadContext(Registry.load(), choose_device("cpu"), "video")
    pipe, ip = load_pipeline(context), load_ip_encoder(context)
    config = ip["encoder"].config
    assert len({config.hidden_size, config.projection_dim, CROSS_DIM}) == 3
    photo = Image.new("RGB", (40, 40), (200, 40, 40))
    for variant, tokens in (("plain", IP_PLAIN_TOKENS), ("plus", IP_PLUS_TOKENS)):
        use_ip_adapter(pipe, ip, variant, 0.6)
        (embeds,) = pipe.prepare_ip_adapter_image_embeds(photo, None, pipe.device, 1, False)
        with torch.no_grad():  # the UNet's own projection of the embeddings into tokens
            (image_tokens,) = pipe.unet.encoder_hid_proj([embeds.to(pipe.unet.dtype)])
        assert image_tokens.shape[-2:] == (tokens, CROSS_DIM), variant
    assert embeds.shape[-1] == config.hidden_size  # Plus reads the penultimate hidden states
    use_ip_adapter(pipe, None, None, 0.0)


def test_the_metric_models_are_saved_as_their_repos_hold_them(tiny_video_dirs):
    """.bin weights only, a 2022 tokenizer_config.json (special tokens as AddedToken dicts) and
    a feature-extractor preprocessor_config.json, and they read back as OpenAI CLIP's ids."""
    import json

    from transformers import CLIPProcessor

    for name in ("clip", "dino", "segmenter"):
        folder = tiny_video_dirs[name]
        assert (folder / "pytorch_model.bin").is_file() and not (
            folder / "model.safetensors"
        ).exists()
        legacy = json.loads((folder / "preprocessor_config.json").read_text())
        assert "feature_extractor_type" in legacy and isinstance(legacy["size"], int)
    config = json.loads((tiny_video_dirs["clip"] / "tokenizer_config.json").read_text())
    assert config["bos_token"]["__type"] == "AddedToken" and "added_tokens_decoder" not in config
    processor = CLIPProcessor.from_pretrained(tiny_video_dirs["clip"])
    assert processor.tokenizer("a photo of a cat").input_ids == [
        49406, 320, 1125, 539, 320, 2368, 49407
    ]  # fmt: skip
