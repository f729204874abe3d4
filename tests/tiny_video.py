"""Tiny models for the subject-video tests, of the real classes and saved in the real layouts:

- a MotionAdapter with the block structure of `guoyww/animatediff-motion-adapter-v1-5-2`
  (four blocks, two motion layers each, a motion mid block, 32 positions), matching the tiny
  SD-1.5 UNet of `tiny_models`, saved with save_pretrained;
- an `h94/IP-Adapter`-style folder: `models/image_encoder/` (a CLIPVisionModelWithProjection)
  and `models/ip-adapter_sd15.safetensors` / `models/ip-adapter-plus_sd15.safetensors` with the
  original key names (`image_proj.*`, `ip_adapter.<n>.to_k_ip.weight`), which diffusers'
  `load_ip_adapter` converts itself; the encoder's hidden size differs from its projection
  size (ViT-H: 1280 and 1024) and IP-Adapter Plus has 16 query tokens, as the real ones;
- a CLIPModel, a DINO ViT and CLIPSeg in the files their 2021-2022 repos hold: the weights as
  pytorch_model.bin only, a 2022 tokenizer_config.json, a feature-extractor era
  preprocessor_config.json, and no processor_config.json.
"""

from __future__ import annotations

from pathlib import Path

from tiny_models import (
    CLIP_VOCAB_SIZE,
    save_as_bin,
    tiny_clip_text_config,
    write_clip_tokenizer,
    write_legacy_image_processor,
)

CROSS_DIM = 32  # the tiny SD-1.5 UNet's cross_attention_dim
VISION_HIDDEN = 32
VISION_IMAGE = 32
# IP-Adapter's image encoder: hidden (the Plus resampler reads) != projection (plain reads),
# neither the UNet's cross-attention width, as ViT-H/14's 1280 and 1024 against SD's 768
IP_VISION_HIDDEN = 48
IP_VISION_PROJECTION = 40
IP_PLAIN_TOKENS = 4
IP_PLUS_TOKENS = 16


def tiny_motion_adapter():
    import torch
    from diffusers import MotionAdapter

    torch.manual_seed(1)
    return MotionAdapter(
        block_out_channels=(32, 32, 64, 64),  # tiny_sd15_unet's blocks
        motion_layers_per_block=2,
        motion_num_attention_heads=2,
        motion_norm_num_groups=8,
        motion_max_seq_length=32,
        use_motion_mid_block=True,
    ).eval()


def save_tiny_motion_adapter(folder: Path) -> Path:
    tiny_motion_adapter().save_pretrained(folder)
    return Path(folder)


def tiny_clip_vision_config(hidden_size: int = VISION_HIDDEN, projection_dim: int = 32):
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(
        hidden_size=hidden_size,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=VISION_IMAGE,
        patch_size=8,
        projection_dim=projection_dim,
        hidden_act="gelu",
    )


def _sd15_cross_attention_sizes() -> list[int]:
    """The hidden size of each spatial cross-attention layer of the tiny UNet, in the order
    diffusers numbers them in an IP-Adapter file (1, 3, 5, ...)."""
    from tiny_models import tiny_sd15_unet

    unet = tiny_sd15_unet()
    channels = list(unet.config.block_out_channels)
    sizes = []
    for name in unet.attn_processors:
        if not name.endswith("attn2.processor"):
            continue
        if name.startswith("mid_block"):
            sizes.append(channels[-1])
        elif name.startswith("up_blocks"):
            sizes.append(list(reversed(channels))[int(name[len("up_blocks.")])])
        else:
            sizes.append(channels[int(name[len("down_blocks.")])])
    return sizes


def _ip_layers(generator) -> dict:
    import torch

    weights = {}
    for index, size in enumerate(_sd15_cross_attention_sizes()):
        key_id = 1 + 2 * index
        for name in ("to_k_ip", "to_v_ip"):
            weights[f"ip_adapter.{key_id}.{name}.weight"] = (
                torch.randn(size, CROSS_DIM, generator=generator) * 0.2
            )
    return weights


def _plain_image_proj(generator) -> dict:
    import torch

    tokens, width = IP_PLAIN_TOKENS, IP_VISION_PROJECTION  # reads the projected image embeds
    return {
        "image_proj.proj.weight": torch.randn(tokens * CROSS_DIM, width, generator=generator) * 0.2,
        "image_proj.proj.bias": torch.zeros(tokens * CROSS_DIM),
        "image_proj.norm.weight": torch.ones(CROSS_DIM),
        "image_proj.norm.bias": torch.zeros(CROSS_DIM),
    }


def _plus_image_proj() -> dict:
    """The Resampler of ip-adapter-plus under its original key names (depth 4, 64-wide heads
    as diffusers' converter assumes, 16 queries reading the encoder's penultimate hidden
    states), from diffusers' own module with the names mapped back."""
    import torch
    from diffusers.models.embeddings import IPAdapterPlusImageProjection

    torch.manual_seed(2)
    module = IPAdapterPlusImageProjection(
        embed_dims=IP_VISION_HIDDEN,
        output_dims=CROSS_DIM,
        hidden_dims=64,
        depth=4,
        dim_head=64,
        heads=1,
        num_queries=IP_PLUS_TOKENS,
    )
    original = {}
    state = module.state_dict()
    for name, value in state.items():
        if ".attn.to_v." in name:
            continue
        key = name
        for new, old in (
            (".ln0.", ".0.norm1."),
            (".ln1.", ".0.norm2."),
            (".attn.to_q.", ".0.to_q."),
            (".attn.to_out.0.", ".0.to_out."),
            (".ff.0.", ".1.0."),
            (".ff.1.net.0.proj.", ".1.1."),
            (".ff.1.net.2.", ".1.3."),
        ):
            key = key.replace(new, old)
        if ".attn.to_k." in name:
            key = name.replace(".attn.to_k.", ".0.to_kv.")
            value = torch.cat([value, state[name.replace("to_k", "to_v")]])
        original[f"image_proj.{key}"] = value
    return original


def save_tiny_ip_adapter(folder: Path) -> Path:
    """`models/image_encoder/` + both SD-1.5 IP-Adapter files, as in `h94/IP-Adapter`."""
    import torch
    from safetensors.torch import save_file
    from transformers import CLIPVisionModelWithProjection

    folder = Path(folder)
    models = folder / "models"
    torch.manual_seed(3)
    config = tiny_clip_vision_config(IP_VISION_HIDDEN, IP_VISION_PROJECTION)
    CLIPVisionModelWithProjection(config).eval().save_pretrained(models / "image_encoder")
    generator = torch.Generator().manual_seed(4)
    layers = _ip_layers(generator)
    save_file({**_plain_image_proj(generator), **layers}, models / "ip-adapter_sd15.safetensors")
    plus_layers = _ip_layers(generator)
    save_file({**_plus_image_proj(), **plus_layers}, models / "ip-adapter-plus_sd15.safetensors")
    return folder


def save_tiny_clip(folder: Path) -> Path:
    """A CLIPModel (text + vision) in openai/clip-vit-base-patch32's files: config.json,
    pytorch_model.bin, the 2022 tokenizer files with tokenizer.json, a CLIPFeatureExtractor
    preprocessor_config.json."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    folder = Path(folder)
    config = CLIPConfig(
        text_config=tiny_clip_text_config().to_dict(),
        vision_config=tiny_clip_vision_config().to_dict(),
        projection_dim=32,
    )
    assert config.text_config.vocab_size == CLIP_VOCAB_SIZE
    torch.manual_seed(5)
    CLIPModel(config).eval().save_pretrained(folder)
    save_as_bin(folder)
    write_clip_tokenizer(folder, "openai/clip-vit-base-patch32", fast_file=True)
    write_legacy_image_processor(folder, "CLIPFeatureExtractor", VISION_IMAGE, crop=True)
    return folder


def save_tiny_dino(folder: Path) -> Path:
    """A ViTModel shaped like facebook/dino-vits16 (patch 16, CLS token), narrow and shallow,
    in its files: config.json, pytorch_model.bin, a ViTFeatureExtractor preprocessor."""
    import torch
    from transformers import ViTConfig, ViTModel

    folder = Path(folder)
    config = ViTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=32,
        patch_size=16,
        qkv_bias=True,
    )
    torch.manual_seed(6)
    ViTModel(config, add_pooling_layer=False).eval().save_pretrained(folder)
    save_as_bin(folder)
    write_legacy_image_processor(folder, "ViTFeatureExtractor", 32)
    return folder


def save_tiny_clipseg(folder: Path) -> Path:
    """CLIPSegForImageSegmentation (CLIP towers + the refined decoder reading two vision
    layers) in CIDAS/clipseg-rd64-refined's files: config.json, pytorch_model.bin, the 2022
    CLIP tokenizer files without tokenizer.json, a ViTFeatureExtractor preprocessor."""
    import torch
    from transformers import CLIPSegConfig, CLIPSegForImageSegmentation

    folder = Path(folder)
    vision = tiny_clip_vision_config().to_dict() | {"num_hidden_layers": 3}
    config = CLIPSegConfig(
        text_config=tiny_clip_text_config().to_dict(),
        vision_config=vision,
        projection_dim=32,
        extract_layers=(1, 2),
        reduce_dim=16,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=32,
        use_complex_transposed_convolution=True,  # the "refined" decoder
    )
    torch.manual_seed(7)
    CLIPSegForImageSegmentation(config).eval().save_pretrained(folder)
    save_as_bin(folder)
    write_clip_tokenizer(folder, "openai/clip-vit-base-patch16")
    write_legacy_image_processor(folder, "ViTFeatureExtractor", VISION_IMAGE)
    return folder
