"""Zero-shot voice-cloning TTS on transformers-native models: Pocket TTS today.

A backend turns a reference waveform into a voice once (`encode_voice`), then speaks one
sentence at a time in that voice (`speak`). Another transformers cloning model (CSM, Dia) plugs
in as one more backend chosen by its config's `model_type`, without touching the engine or tab.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from ..errors import ModelUnavailable
from ..loading import pretrained, pretrained_files, unavailable
from ..registry import ResolvedModel, override_variable
from .clip_cache import ClipCache


class VoiceCloner(Protocol):
    sample_rate: int
    description: str

    def encode_voice(self, samples: np.ndarray) -> Any: ...

    def speak(self, text: str, voice: Any, temperature: float) -> np.ndarray: ...


class PocketTTS:
    """Pocket TTS (Kyutai) as ported to transformers: a causal transformer over voice latents,
    text and audio latents, a flow head sampling one latent per 80 ms, and its codec."""

    description = "Pocket TTS"

    def __init__(self, processor, model):
        self.processor = processor
        self.model = model
        self.sample_rate = int(processor.feature_extractor.sampling_rate)
        self._check_prompt_layout()
        self.voices = ClipCache()  # a voice prompt is encoded once, however often it is used

    @classmethod
    def load(cls, tts: ResolvedModel, audio_tokenizer, device: torch.device) -> PocketTTS:
        """Pocket TTS from its checkpoint folder and its codec (see `load_pocket_codec`)."""
        from transformers import (
            AutoTokenizer,
            PocketTTSFeatureExtractor,
            PocketTTSForConditionalGeneration,
            PocketTTSProcessor,
        )

        # The processor is assembled here rather than by from_pretrained, which would fetch
        # the codec by the id written in processor_config.json with no fallback:
        # load_pocket_codec tries that id, then the registry's speech.codec (offline too).
        folder = tts.folder
        try:
            settings = _processor_settings(folder)
            chat_template = _chat_template(folder)
        except (OSError, ValueError, KeyError) as err:
            raise unavailable(tts, f"cannot load Pocket TTS: {err}") from err
        processor = PocketTTSProcessor(
            pretrained_files(tts, PocketTTSFeatureExtractor),
            pretrained_files(tts, AutoTokenizer),
            audio_tokenizer=audio_tokenizer.to(device).eval(),
            chat_template=chat_template,
            **settings,
        )
        model = pretrained(tts, PocketTTSForConditionalGeneration, dtype=torch.float32)
        return cls(processor, model.to(device).eval())

    @property
    def components(self) -> dict:
        """The torch modules, for the model manager's memory accounting."""
        return {"model": self.model, "codec": self.processor.audio_tokenizer}

    def _conversation(self, text: str) -> list[dict]:
        return [
            {
                "role": "user",
                "content": [{"type": "audio", "audio": "voice"}, {"type": "text", "text": text}],
            }
        ]

    def _prompt(self, text: str) -> str:
        return self.processor.apply_chat_template(
            self._conversation(text), tokenize=False, add_generation_prompt=True
        )

    def _check_prompt_layout(self) -> None:
        """Fail at load, not mid-request, if the chat template lays the prompt out otherwise."""
        prompt = self._prompt("Hello.")
        audio_token, audio_bos = self.processor.audio_token, self.processor.audio_bos_token
        if prompt.count(audio_token) != 1 or not prompt.endswith(audio_bos):
            raise ModelUnavailable(
                "speech.tts",
                str(getattr(self.model, "name_or_path", "") or "the TTS checkpoint"),
                "Use a Pocket TTS checkpoint converted for transformers (eustlb/pocket-tts).",
                f"its chat template does not render one voice followed by the text and {audio_bos}",
            )

    @torch.inference_mode()
    def encode_voice(self, samples: np.ndarray) -> torch.Tensor:
        """(frames, latent_dim) codec latents of a 24 kHz voice prompt."""
        return self.voices.get(samples, f"codec-latents@{self.sample_rate}", self._encode)

    @torch.inference_mode()
    def _encode(self, samples: np.ndarray) -> torch.Tensor:
        inputs = self.processor(
            text=self._prompt("Hello."),
            audio=[samples],
            sampling_rate=self.sample_rate,
            return_tensors="pt",
        )
        mask = inputs["audio_prompt_latents_mask"][0].bool()
        return inputs["audio_prompt_latents"][0][mask]

    @torch.inference_mode()
    def speak(self, text: str, voice: torch.Tensor, temperature: float) -> np.ndarray:
        inputs = self.processor(
            text=self._prompt(text), audio_prompt_latents=[voice], return_tensors="pt"
        ).to(self.model.device)
        # temperature is the variance of the flow sampler's noise; 0 samples deterministically
        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {}
        generated = self.model.generate(
            **inputs, **(sampling or {"do_sample": False}), return_dict_in_generate=True
        )
        waveform = self.processor.decode(generated.audio_latents, generated.audio_latents_mask)[0]
        return waveform.numpy().astype(np.float32)


def _processor_settings(folder: Path) -> dict:
    """The processor's own settings from processor_config.json (not its sub-processors)."""
    path = folder / "processor_config.json"
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    keys = (
        "short_text_max_words",
        "frames_after_eos_short_text",
        "frames_after_eos",
        "fade_in_duration",
    )
    return {key: data[key] for key in keys if key in data}


def _chat_template(folder: Path) -> str | None:
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    for name in ("processor_config.json", "chat_template.json", "tokenizer_config.json"):
        path = folder / name
        if path.is_file():
            template = json.loads(path.read_text(encoding="utf-8")).get("chat_template")
            if template:
                return template
    return None


Loader = Callable[[ResolvedModel, Callable[[str], ResolvedModel], torch.device], VoiceCloner]


def codec_named_by(folder: Path) -> str | None:
    """Where the checkpoint's processor_config.json says its codec is (transformers writes
    audio_tokenizer.audio_tokenizer_name_or_path): a Hub id or an absolute path, else None."""
    try:
        data = json.loads((folder / "processor_config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    entry = data.get("audio_tokenizer") if isinstance(data, dict) else None
    name = entry.get("audio_tokenizer_name_or_path") if isinstance(entry, dict) else None
    if not isinstance(name, str):
        return None
    name = name.strip()
    if re.fullmatch(r"[\w.-]+/[\w.-]+", name) or (Path(name).is_absolute() and Path(name).exists()):
        return name
    return None


def load_pocket_codec(tts: ResolvedModel, resolve):
    """The Pocket TTS codec from where the checkpoint names it, else from the registry's
    speech.codec (an override of speech.codec is used alone); ModelUnavailable naming every
    place tried when none loads."""
    from transformers import PocketTTSAudioTokenizerModel

    named = codec_named_by(tts.folder)
    sources: list[str | None] = [None]
    if named and not os.environ.get(override_variable("speech", "codec")):
        sources.insert(0, named)
    tried: list[tuple[str, str]] = []  # (where, why it failed)
    fix = ""
    for source in sources:
        where = f"{source} (named by the checkpoint)" if source else None
        try:
            codec = resolve("codec", source) if source else resolve("codec")
        except ModelUnavailable as err:
            fix = err.fix
            tried.append((where or err.source, err.reason or "not available"))
            continue
        fix = codec.spec.fix()
        try:
            return pretrained(codec, PocketTTSAudioTokenizerModel, dtype=torch.float32)
        except ModelUnavailable as err:
            tried.append((where or codec.spec.source, f"cannot load: {err.reason}"))
    raise ModelUnavailable(
        "speech.codec",
        " or ".join(where for where, _ in tried),
        fix,
        "; ".join(f"{where}: {why}" for where, why in tried),
    )


def _load_pocket(tts: ResolvedModel, resolve, device: torch.device) -> VoiceCloner:
    return PocketTTS.load(tts, load_pocket_codec(tts, resolve), device)


BACKENDS: dict[str, Loader] = {"pocket_tts": _load_pocket}


def load_voice_cloner(
    tts: ResolvedModel, resolve: Callable[[str], ResolvedModel], device: torch.device
) -> VoiceCloner:
    """The backend for the checkpoint's `model_type`; `resolve` fetches further components."""
    config = tts.folder / "config.json"
    try:
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, json.JSONDecodeError) as err:
        raise ModelUnavailable(
            tts.spec.key, tts.spec.source, tts.spec.fix(), f"no readable {config.name}"
        ) from err
    if model_type not in BACKENDS:
        raise ModelUnavailable(
            tts.spec.key,
            tts.spec.source,
            f"Use one of the supported TTS model types: {', '.join(sorted(BACKENDS))}.",
            f"model type {model_type!r} has no backend here",
        )
    return BACKENDS[model_type](tts, resolve, device)
