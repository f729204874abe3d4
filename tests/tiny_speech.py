"""Tiny, randomly initialised speech models of the real classes and block structure, saved in
the real formats, for the speech engine's tests. No network: the tokenizer is trained here.

- Pocket TTS: PocketTTSForConditionalGeneration + its processor (feature extractor, a Unigram
  tokenizer with the four audio placeholder tokens, a chat template) and, as its own component,
  the PocketTTSAudioTokenizerModel codec with the real 1920-sample frame.
- WavLM: WavLMModel with WavLM-Large's layout (stable layer norm, the 7 convolutions giving a
  320-sample hop), 6 layers so layer 6 exists.
- Vocoder: our HiFiGANGenerator with the published structure, narrow, saved as kNN-VC saves it
  ({"generator": state_dict} via torch.save).
- Speaker: WavLMForXVector with a Wav2Vec2FeatureExtractor.
- ASR: WhisperForConditionalGeneration with a WhisperProcessor (byte-level BPE trained here).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
from tiny_models import save_as_bin

AUDIO_TOKENS = {
    "audio_prompt_token": "<|voice|>",
    "audio_latent_token": "<|latent|>",
    "audio_prompt_bos_token": "<|voice_start|>",
    "audio_bos_token": "<|audio_start|>",
}
# The prompt layout PocketTTSProcessor expects: voice BOS, the voice, the text, the audio BOS.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'audio' -%}{{ audio_prompt_bos_token }}{{ audio_prompt_token }}"
    "{%- elif item['type'] == 'text' -%}{{ item['text'] }}{%- endif -%}"
    "{%- endfor -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ audio_bos_token }}{%- endif -%}"
)
CORPUS = [
    "Hello world, this is a test of zero-shot speech.",
    "The quick brown fox jumps over the lazy dog!",
    "Is it fast? Yes: it runs 3.5 times faster; really.",
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,!?;:'\"-()",
]
LATENT_DIM = 8


def write_pocket_tokenizer(folder: Path):
    """A real TokenizersBackend (Unigram + Metaspace, like a SentencePiece model) trained on a
    small corpus, with the named audio tokens Pocket TTS's processor reads."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.Unigram())
    backend.normalizer = normalizers.NFKC()
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=150,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        unk_token="<unk>",
        show_progress=False,
    )
    backend.train_from_iterator(CORPUS, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        extra_special_tokens=AUDIO_TOKENS,
        padding_side="left",
    )
    tokenizer.save_pretrained(folder)
    return tokenizer


def tiny_pocket_codec(full_size: bool = False):
    import torch
    from transformers import PocketTTSAudioTokenizerConfig, PocketTTSAudioTokenizerModel

    torch.manual_seed(0)
    if full_size:
        return PocketTTSAudioTokenizerModel(PocketTTSAudioTokenizerConfig()).eval()
    config = PocketTTSAudioTokenizerConfig(
        hidden_size=16,
        num_filters=4,
        upsampling_ratios=[6, 5, 4],
        num_hidden_layers=1,
        intermediate_size=32,
        num_attention_heads=2,
        num_key_value_heads=2,
        upsample_groups=16,
        latent_stride=16,
        latent_dim=LATENT_DIM,
        sliding_window=16,
        max_position_embeddings=256,
    )
    return PocketTTSAudioTokenizerModel(config).eval()


def save_tiny_pocket_tts(tts_folder: Path, codec_folder: Path, full_size: bool = False) -> None:
    """Pocket TTS (model, processor files) into `tts_folder`, its codec into `codec_folder`.
    `full_size`: the released architecture's sizes (random weights, for timing)."""
    import torch
    from transformers import (
        GenerationConfig,
        PocketTTSConfig,
        PocketTTSFeatureExtractor,
        PocketTTSForConditionalGeneration,
        PocketTTSProcessor,
    )

    tokenizer = write_pocket_tokenizer(tts_folder)
    codec = tiny_pocket_codec(full_size)
    codec.save_pretrained(codec_folder)
    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in AUDIO_TOKENS.items()}
    torch.manual_seed(0)
    sizes = dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        latent_dim=LATENT_DIM,
        max_position_embeddings=512,
        flow_head_config={
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "latent_dim": LATENT_DIM,
            "condition_dim": 32,
            "frequency_embedding_size": 16,
        },
    )
    config = PocketTTSConfig(
        vocab_size=len(tokenizer),
        **({} if full_size else sizes),
        pad_token_id=tokenizer.pad_token_id,
        audio_prompt_token_id=ids["audio_prompt_token"],
        audio_latent_token_id=ids["audio_latent_token"],
        audio_prompt_bos_token_id=ids["audio_prompt_bos_token"],
        audio_bos_token_id=ids["audio_bos_token"],
        frame_rate=codec.config.frame_rate,
    )
    model = PocketTTSForConditionalGeneration(config).eval()
    # Pocket TTS's generate sets its frame budget from the text's length. Tiny: the random
    # end-of-speech head stops after its first 6 frames or soon after. Full size (timing): it
    # never fires, so every sentence runs its whole budget.
    limits = {"eos_threshold": 1e9} if full_size else {}
    model.generation_config = GenerationConfig(pad_token_id=tokenizer.pad_token_id, **limits)
    model.save_pretrained(tts_folder)
    frame = codec.config.frame_size
    processor = PocketTTSProcessor(
        PocketTTSFeatureExtractor(frame_size=frame, pad_to_multiple_of=frame),
        tokenizer,
        audio_tokenizer=codec,
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(tts_folder)


def tiny_wavlm_config(**overrides):
    from transformers import WavLMConfig

    settings = dict(
        hidden_size=32,
        num_hidden_layers=6,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        do_stable_layer_norm=True,
        feat_extract_norm="layer",
        num_buckets=32,
        max_bucket_distance=100,
    )
    settings.update(overrides)
    return WavLMConfig(**settings)


WAVLM_LARGE = dict(
    hidden_size=1024,
    num_hidden_layers=24,
    num_attention_heads=16,
    intermediate_size=4096,
    conv_dim=(512,) * 7,
    num_conv_pos_embeddings=128,
    num_conv_pos_embedding_groups=16,
    do_stable_layer_norm=True,
    feat_extract_norm="layer",
    num_buckets=320,
    max_bucket_distance=800,
)


def save_tiny_wavlm(folder: Path, full_size: bool = False) -> Path:
    import torch
    from transformers import WavLMModel

    torch.manual_seed(0)
    config = tiny_wavlm_config(**WAVLM_LARGE) if full_size else tiny_wavlm_config()
    WavLMModel(config).eval().save_pretrained(folder)
    save_as_bin(folder)  # microsoft/wavlm-large holds pytorch_model.bin only
    return folder


def save_tiny_vocoder(path: Path, feature_dim: int = 32, full_size: bool = False) -> Path:
    import torch

    from engines.speech.hifigan import HiFiGANConfig, HiFiGANGenerator

    torch.manual_seed(0)
    config = (
        HiFiGANConfig()
        if full_size
        else HiFiGANConfig(feature_dim=feature_dim, hidden_dim=16, upsample_initial_channel=16)
    )
    torch.save({"generator": HiFiGANGenerator(config).state_dict()}, path)
    return path


def save_tiny_speaker(folder: Path, full_size: bool = False) -> Path:
    import torch
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector

    torch.manual_seed(0)
    config = tiny_wavlm_config(
        num_hidden_layers=2,
        do_stable_layer_norm=False,
        feat_extract_norm="group",
        tdnn_dim=(16, 16, 16, 16, 32),
        xvector_output_dim=24,
        use_weighted_layer_sum=True,
    )
    if full_size:  # wavlm-base-plus-sv's layout
        config = WavLMConfig(use_weighted_layer_sum=True)
    WavLMForXVector(config).eval().save_pretrained(folder)
    save_as_bin(folder)  # as microsoft/wavlm-base-plus-sv holds it
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True
    ).save_pretrained(folder)
    return folder


WHISPER_SPECIAL_TOKENS = [
    "<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|translate|>", "<|notimestamps|>",
    "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>",
]  # fmt: skip


def save_tiny_whisper(folder: Path) -> Path:
    """WhisperForConditionalGeneration (80 mel bins, 30 s windows) with a WhisperProcessor whose
    byte-level BPE is trained here, and the generation settings language/task prompts need."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizer,
    )

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(CORPUS, trainer)
    bpe.model.save(str(folder))
    end = "<|endoftext|>"
    tokenizer = WhisperTokenizer(
        str(folder / "vocab.json"),
        str(folder / "merges.txt"),
        unk_token=end,
        bos_token=end,
        eos_token=end,
        pad_token=end,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": WHISPER_SPECIAL_TOKENS})
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in WHISPER_SPECIAL_TOKENS}
    end_id = tokenizer.convert_tokens_to_ids(end)
    config = WhisperConfig(
        vocab_size=len(tokenizer),
        num_mel_bins=80,
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_target_positions=32,
        decoder_start_token_id=ids["<|startoftranscript|>"],
        eos_token_id=end_id,
        pad_token_id=end_id,
        bos_token_id=end_id,
    )
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=ids["<|startoftranscript|>"],
        eos_token_id=end_id,
        pad_token_id=end_id,
        max_length=12,
        lang_to_id={"<|en|>": ids["<|en|>"]},
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
        no_timestamps_token_id=ids["<|notimestamps|>"],
        is_multilingual=True,
    )
    model.save_pretrained(folder)
    # the processor's parts side by side, as openai/whisper-base holds them (its files predate
    # processor_config.json)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_speech_models(root: Path, full_size: bool = False) -> dict[str, Path]:
    """Every speech component into `root`: {component: path}. `full_size` builds the released
    architectures with random weights (for timing on real sizes; nothing is downloaded)."""
    root = Path(root)
    paths = {
        "tts": root / "pocket-tts",
        "codec": root / "pocket-tts-codec",
        "wavlm": root / "wavlm",
        "vocoder": root / "prematch_g_random.pt",
        "speaker": root / "wavlm-sv",
    }
    save_tiny_pocket_tts(paths["tts"], paths["codec"], full_size)
    save_tiny_wavlm(paths["wavlm"], full_size)
    save_tiny_vocoder(paths["vocoder"], full_size=full_size)
    save_tiny_speaker(paths["speaker"], full_size)
    if not full_size:  # Whisper is optional (WER) and its size does not change the timings
        paths["asr"] = save_tiny_whisper(root / "whisper")
    return paths


@lru_cache(maxsize=1)
def tiny_speech_models() -> dict[str, Path]:
    """Every tiny speech component, built once per test process: {component: path}."""
    root = Path(tempfile.mkdtemp(prefix="zss-tiny-speech-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return save_speech_models(root)


def harmonic_tone(
    f0: float,
    seconds: float,
    rate: int = 16000,
    vibrato: float = 0.0,
    bursts_per_second: float | None = None,
) -> np.ndarray:
    """A voiced-speech stand-in: 8 harmonics of `f0` (with optional vibrato depth, a fraction
    of f0) and optional syllable-like loudness bursts."""
    t = np.arange(int(seconds * rate)) / rate
    frequency = f0 * (1.0 + vibrato * np.sin(2 * np.pi * 2.3 * t))  # not locked to the bursts
    phase = 2 * np.pi * np.cumsum(frequency) / rate
    wave = sum(np.sin(h * phase) / h for h in range(1, 9))
    if bursts_per_second:
        wave = wave * (np.sin(np.pi * bursts_per_second * t) ** 2)
    return (0.3 * wave / np.max(np.abs(wave))).astype(np.float32)
