"""kNN-VC (Baas, van Niekerk and Kamper, 2023): WavLM layer-6 features of the source, each
frame replaced by the mean of its k nearest frames of the target speaker, vocoded by HiFi-GAN."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import ModelUnavailable
from ..loading import pretrained
from ..registry import ResolvedModel
from .clip_cache import ClipCache
from .features import WAVLM_LAYER, WAVLM_RATE, check_wavlm, wavlm_features
from .hifigan import HiFiGANGenerator, load_hifigan
from .knn import DEFAULT_K, knn_average


def load_wavlm(resolved: ResolvedModel, device: torch.device):
    """WavLM with its encoder cut after layer 6: later layers would not change layer 6's
    output, and skipping them saves three quarters of the work."""
    from transformers import WavLMModel

    model = pretrained(resolved, WavLMModel, dtype=torch.float32)
    check_wavlm(model, resolved.spec.key)
    model.encoder.layers = model.encoder.layers[:WAVLM_LAYER]
    model.config.num_hidden_layers = WAVLM_LAYER
    return model.to(device).eval()


def load_vocoder(resolved: ResolvedModel, device: torch.device) -> HiFiGANGenerator:
    return load_hifigan(resolved.path, resolved.spec.key).to(device)


@dataclass
class Timings:
    """Seconds spent in each part of a conversion."""

    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, part: str, started: float) -> None:
        self.seconds[part] = self.seconds.get(part, 0.0) + time.perf_counter() - started


class KnnVC:
    """Voice conversion by nearest neighbours in WavLM space; 16 kHz in and out."""

    sample_rate = WAVLM_RATE

    def __init__(self, wavlm, vocoder: HiFiGANGenerator):
        if vocoder.config.feature_dim != wavlm.config.hidden_size:
            raise ModelUnavailable(
                "speech.vocoder",
                "vocoder",
                "Use a vocoder trained on the features of the WavLM in speech.wavlm.",
                f"it takes {vocoder.config.feature_dim}-d features; WavLM gives "
                f"{wavlm.config.hidden_size}-d",
            )
        self.wavlm = wavlm
        self.vocoder = vocoder
        self.voice_features = ClipCache()  # voice clips (matching sets) repeat across runs

    @property
    def components(self) -> dict:
        """The torch modules, for the model manager's memory accounting."""
        return {"wavlm": self.wavlm, "vocoder": self.vocoder}

    def features(
        self, samples: np.ndarray, timings: Timings | None = None, remember: bool = False
    ) -> torch.Tensor:
        """WavLM layer-6 features; `remember` keeps them for the next run with the same clip
        (voice clips: a source or generated speech is new each time)."""
        started = time.perf_counter()
        if remember:
            feats = self.voice_features.get(samples, f"wavlm-{WAVLM_LAYER}", self._wavlm)
        else:
            feats = self._wavlm(samples)
        _sync(feats)
        if timings is not None:
            timings.add("features", started)
        return feats

    def _wavlm(self, samples: np.ndarray) -> torch.Tensor:
        return wavlm_features(self.wavlm, samples)

    @torch.inference_mode()
    def convert(
        self,
        source: torch.Tensor,
        matching_set: torch.Tensor,
        k: int = DEFAULT_K,
        timings: Timings | None = None,
    ) -> np.ndarray:
        """Features of the source and of the target speaker -> 16 kHz waveform."""
        timings = timings if timings is not None else Timings()
        started = time.perf_counter()
        matched = knn_average(source, matching_set, k)
        _sync(matched)
        timings.add("matching", started)
        started = time.perf_counter()
        parameter = next(self.vocoder.parameters())
        wave = self.vocoder(matched[None].to(parameter.device, parameter.dtype))[0]
        out = wave.float().cpu().numpy()
        timings.add("vocoder", started)
        return out


def _sync(tensor: torch.Tensor) -> None:
    if tensor.is_cuda:
        torch.cuda.synchronize(tensor.device)
