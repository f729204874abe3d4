"""Tiny, randomly initialised models of the real classes and block structure, saved in the
real format, so tests load them through the project's real loading code. No network."""

from __future__ import annotations

import gzip
import importlib.util
import json
from functools import lru_cache
from pathlib import Path

CLIP_VOCAB_SIZE = 49408


def _open_clip_bpe_file() -> Path:
    """The BPE merges file that ships inside open_clip (found without importing open_clip)."""
    spec = importlib.util.find_spec("open_clip")
    assert spec and spec.submodule_search_locations, "open_clip is not installed"
    return Path(next(iter(spec.submodule_search_locations))) / "bpe_simple_vocab_16e6.txt.gz"


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars), strict=True))


@lru_cache(maxsize=1)
def clip_vocab_and_merges() -> tuple[dict[str, int], list[str]]:
    """OpenAI CLIP's vocab.json and merges.txt contents, rebuilt from open_clip's BPE file."""
    lines = gzip.open(_open_clip_bpe_file()).read().decode("utf-8").split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]
    units = list(_bytes_to_unicode().values())
    tokens = units + [u + "</w>" for u in units] + ["".join(m.split()) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    assert len(tokens) == CLIP_VOCAB_SIZE
    return {token: index for index, token in enumerate(tokens)}, merges


def _added_token(content: str, typed: bool) -> dict:
    token = {"content": content, "lstrip": False, "normalized": True, "rstrip": False}
    token["single_word"] = False
    return {"__type": "AddedToken", **token} if typed else token


def write_clip_tokenizer(
    folder: Path, name_or_path: str = "openai/clip-vit-large-patch14", fast_file: bool = False
):
    """OpenAI CLIP's tokenizer files in `folder` as the 2022 Hub repos hold them (SD 1.5's
    tokenizer/, openai/clip-vit-base-patch32, CIDAS/clipseg): vocab.json, merges.txt, a
    special_tokens_map.json and a tokenizer_config.json written by transformers 4.2x (special
    tokens as "__type": "AddedToken" dicts, tokenizer_class, name_or_path); `fast_file` adds
    the tokenizers-library tokenizer.json that openai/clip-vit-base-patch32 also ships.
    Returns the tokenizer transformers reads from them."""
    from transformers import CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges = clip_vocab_and_merges()
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", "utf-8")
    start, end = "<|startoftext|>", "<|endoftext|>"
    special = {
        "bos_token": _added_token(start, False),
        "eos_token": _added_token(end, False),
        "pad_token": end,
        "unk_token": _added_token(end, False),
    }
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2), "utf-8")
    config = {
        "add_prefix_space": False,
        "bos_token": _added_token(start, True),
        "do_lower_case": True,
        "eos_token": _added_token(end, True),
        "errors": "replace",
        "model_max_length": 77,
        "name_or_path": name_or_path,
        "pad_token": end,
        "special_tokens_map_file": "./special_tokens_map.json",
        "tokenizer_class": "CLIPTokenizer",
        "unk_token": _added_token(end, True),
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2), "utf-8")
    tokenizer = CLIPTokenizer.from_pretrained(folder)
    if fast_file:
        tokenizer.backend_tokenizer.save(str(folder / "tokenizer.json"))
    return tokenizer


def write_legacy_image_processor(folder: Path, extractor: str, size: int, crop: bool = False):
    """A preprocessor_config.json as transformers 4.1x-4.2x wrote it for a feature extractor
    (`extractor`: "CLIPFeatureExtractor", "ViTFeatureExtractor"): an int size, no
    image_processor_type. CLIP's normalisation for CLIP, ImageNet's otherwise."""
    clip = extractor.startswith("CLIP")
    config = {
        "do_normalize": True,
        "do_resize": True,
        "feature_extractor_type": extractor,
        "image_mean": [0.48145466, 0.4578275, 0.40821073] if clip else [0.485, 0.456, 0.406],
        "image_std": [0.26862954, 0.26130258, 0.27577711] if clip else [0.229, 0.224, 0.225],
        "resample": 3 if clip else 2,
        "size": size,
    }
    if crop:
        config |= {"crop_size": size, "do_center_crop": True}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "preprocessor_config.json").write_text(json.dumps(config, indent=2), "utf-8")


def save_as_bin(folder: Path, weights: str = "model.safetensors", into: str = "pytorch_model.bin"):
    """Replace a saved safetensors file by the pickled state dict (torch.save) that repos
    uploaded before safetensors hold instead."""
    import torch
    from safetensors.torch import load_file

    folder = Path(folder)
    torch.save(dict(load_file(folder / weights)), folder / into)
    (folder / weights).unlink()


def tiny_clip_text_config(hidden_size: int = 32, projection_dim: int = 32):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=CLIP_VOCAB_SIZE,
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=77,
        projection_dim=projection_dim,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=49407,
        hidden_act="quick_gelu",
    )


def tiny_clip_text_model(cross_attention_dim: int = 32):
    """A CLIPTextModel with SD-1.5's text encoder layout, 32 wide."""
    import torch
    from transformers import CLIPTextModel

    torch.manual_seed(0)
    return CLIPTextModel(tiny_clip_text_config(hidden_size=cross_attention_dim)).eval()


def tiny_sd15_unet(cross_attention_dim: int = 32, sample_size: int = 16):
    """UNet2DConditionModel with SD-1.5's block structure: three cross-attention down blocks
    and a plain one, mirrored up blocks, two layers per block, one transformer per block."""
    import torch
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=4,
        out_channels=4,
        down_block_types=(
            "CrossAttnDownBlock2D",
            "CrossAttnDownBlock2D",
            "CrossAttnDownBlock2D",
            "DownBlock2D",
        ),
        up_block_types=(
            "UpBlock2D",
            "CrossAttnUpBlock2D",
            "CrossAttnUpBlock2D",
            "CrossAttnUpBlock2D",
        ),
        block_out_channels=(32, 32, 64, 64),
        layers_per_block=2,
        attention_head_dim=8,
        cross_attention_dim=cross_attention_dim,
        norm_num_groups=8,
    ).eval()


def tiny_sd_vae():
    """AutoencoderKL with SD's four-block (8x downsampling) structure and 4 latent channels."""
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
    ).eval()


def save_tiny_sd15_pipeline(folder: Path) -> Path:
    """A complete tiny Stable Diffusion 1.5 folder (model_index.json + components), saved with
    save_pretrained the way the Hub repo is laid out."""
    import shutil
    import tempfile

    from diffusers import PNDMScheduler, StableDiffusionPipeline

    folder = Path(folder)
    scratch = Path(tempfile.mkdtemp(prefix="clip-tokenizer-"))
    tokenizer = write_clip_tokenizer(scratch)
    scheduler = PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        skip_prk_steps=True,
        steps_offset=1,
        set_alpha_to_one=False,
    )
    pipeline = StableDiffusionPipeline(
        vae=tiny_sd_vae(),
        text_encoder=tiny_clip_text_model(),
        tokenizer=tokenizer,
        unet=tiny_sd15_unet(),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(folder)
    shutil.rmtree(folder / "tokenizer")  # the repo's own 2022 files, not a v5 tokenizer.json
    write_clip_tokenizer(folder / "tokenizer")
    shutil.rmtree(scratch)
    return folder


def tiny_amused_vqmodel(num_codes: int = 8192, latent_channels: int = 8):
    """VQModel with aMUSEd's VQGAN structure: five encoder blocks (f16), no mid attention,
    lookup from codebook; narrow channels and latent width."""
    import torch
    from diffusers import VQModel

    torch.manual_seed(0)
    return VQModel(
        act_fn="silu",
        block_out_channels=(8, 8, 8, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 5,
        up_block_types=("UpDecoderBlock2D",) * 5,
        in_channels=3,
        out_channels=3,
        latent_channels=latent_channels,
        layers_per_block=1,
        norm_num_groups=8,
        num_vq_embeddings=num_codes,
        sample_size=32,
        mid_block_add_attention=False,
        lookup_from_codebook=True,
    ).eval()
