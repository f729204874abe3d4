"""A tiny aMUSEd folder for the compression tests: the real classes (VQModel, UVit2DModel,
CLIPTextModelWithProjection, CLIPTokenizer, AmusedScheduler) with aMUSEd-512's block structure,
randomly initialised, saved with save_pretrained in the Hub repo's layout."""

from __future__ import annotations

from pathlib import Path

CODEBOOK_SIZE = 8192  # as aMUSEd: the K-means sizes 16 ... 8192 all exist
LATENT_CHANNELS = 8
TEXT_WIDTH = 32


def tiny_amused_transformer(codebook_size: int = CODEBOOK_SIZE, text_width: int = TEXT_WIDTH):
    """UVit2DModel shaped like aMUSEd-512's: conv embed, a down block that halves the token grid,
    transformer layers, an up block that doubles it back, and the MLM head over the codebook.
    The vocabulary is the codebook plus one mask token, whose id is the last."""
    import torch
    from diffusers import UVit2DModel

    torch.manual_seed(1)
    micro_cond_encode_dim = 8
    return UVit2DModel(
        hidden_size=32,
        use_bias=False,
        cond_embed_dim=text_width,
        micro_cond_encode_dim=micro_cond_encode_dim,
        micro_cond_embed_dim=5 * micro_cond_encode_dim,
        encoder_hidden_size=text_width,
        vocab_size=codebook_size + 1,
        codebook_size=codebook_size,
        in_channels=16,
        block_out_channels=16,
        num_res_blocks=1,
        downsample=True,
        upsample=True,
        block_num_heads=2,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        sample_size=4,
    ).eval()


def tiny_clip_text_with_projection(text_width: int = TEXT_WIDTH):
    """CLIPTextModelWithProjection (aMUSEd's text encoder class), two layers, 32 wide."""
    import torch
    from tiny_models import tiny_clip_text_config
    from transformers import CLIPTextModelWithProjection

    torch.manual_seed(2)
    config = tiny_clip_text_config(hidden_size=text_width, projection_dim=text_width)
    return CLIPTextModelWithProjection(config).eval()


def save_tiny_amused(folder: Path) -> Path:
    """Write model_index.json, vqvae/, transformer/, text_encoder/, tokenizer/ and scheduler/
    into `folder`, exactly as `amused/amused-512` is laid out."""
    import warnings

    from diffusers import AmusedPipeline, AmusedScheduler
    from tiny_models import tiny_amused_vqmodel, write_clip_tokenizer

    folder = Path(folder)
    tokenizer = write_clip_tokenizer(folder / "tokenizer")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the aMUSEd pipeline class is marked deprecated
        pipeline = AmusedPipeline(
            vqvae=tiny_amused_vqmodel(CODEBOOK_SIZE, LATENT_CHANNELS),
            tokenizer=tokenizer,
            text_encoder=tiny_clip_text_with_projection(),
            transformer=tiny_amused_transformer(),
            scheduler=AmusedScheduler(mask_token_id=CODEBOOK_SIZE),
        )
        pipeline.save_pretrained(folder)
    return folder


def tiny_amused_in(base: Path) -> Path:
    """The tiny aMUSEd folder under `base`, built on first call (shared by test modules)."""
    folder = Path(base) / "tiny-amused"
    if not (folder / "model_index.json").is_file():
        save_tiny_amused(folder)
    return folder


def tiny_photo(width: int = 72, height: int = 52, seed: int = 0):
    """A small RGB test image with structure (a crop of skimage's astronaut, resized), of a
    size that is not a multiple of 16."""
    import numpy as np
    import skimage.data
    from PIL import Image

    photo = Image.fromarray(skimage.data.astronaut()).resize((width, height))
    noise = np.random.default_rng(seed).integers(-3, 4, size=(height, width, 3))
    return np.clip(np.asarray(photo, dtype=np.int64) + noise, 0, 255).astype(np.uint8)


def compression_studio(folder: Path, cache_dir: Path):
    """A CPU Studio whose compression engine loads the tiny folder through the registry
    override, with its codebook cache under `cache_dir`. Returns (studio, undo)."""
    import pytest

    from engines import registry
    from engines.studio import Studio

    patch = pytest.MonkeyPatch()
    patch.setenv(registry.override_variable("compression", "amused"), str(folder))
    patch.setattr(registry, "CACHE_DIR", Path(cache_dir))
    return Studio(device="cpu"), patch.undo
