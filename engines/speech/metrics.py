"""What is measured on the output: speaker similarity (WavLM x-vectors) and word error rate
(Whisper transcript against the intended words)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

SPEAKER_RATE = 16000
SPEAKER_MAX_SECONDS = 60.0


def speaker_embedding(model, feature_extractor, samples_16k: np.ndarray) -> torch.Tensor:
    """Unit-length x-vector of a 16 kHz clip (WavLMForXVector, e.g. wavlm-base-plus-sv)."""
    import torch

    device = next(model.parameters()).device
    samples_16k = samples_16k[: int(SPEAKER_MAX_SECONDS * SPEAKER_RATE)]
    inputs = feature_extractor(samples_16k, sampling_rate=SPEAKER_RATE, return_tensors="pt")
    inputs = {key: value.to(device) for key, value in inputs.items()}
    with torch.inference_mode():
        embedding = model(**inputs).embeddings[0].float()
    return torch.nn.functional.normalize(embedding, dim=-1)


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    import torch

    return float(torch.nn.functional.cosine_similarity(a, b, dim=-1))


_PUNCTUATION = re.compile(r"[^\w\s']")


def basic_normalise(text: str) -> str:
    """Lower case, punctuation dropped, whitespace collapsed (for when no Whisper normaliser)."""
    return " ".join(_PUNCTUATION.sub(" ", text.lower()).split())


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, on already normalised text."""
    ref, hyp = reference.split(), hypothesis.split()
    if not ref:
        return 0.0 if not hyp else 1.0
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, start=1):
        current = [i] + [0] * len(hyp)
        for j, hyp_word in enumerate(hyp, start=1):
            current[j] = min(
                previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word)
            )
        previous = current
    return previous[-1] / len(ref)


def transcribe(model, processor, samples_16k: np.ndarray) -> str:
    """English transcript of a 16 kHz clip with a Whisper model (long clips in 30 s windows)."""
    import torch

    parameter = next(model.parameters())
    texts = []
    window = 30 * SPEAKER_RATE
    for start in range(0, len(samples_16k), window):
        inputs = processor(
            samples_16k[start : start + window], sampling_rate=SPEAKER_RATE, return_tensors="pt"
        )
        features = inputs.input_features.to(parameter.device, parameter.dtype)
        with torch.inference_mode():
            ids = model.generate(features, language="en", task="transcribe")
        texts.append(processor.batch_decode(ids, skip_special_tokens=True)[0].strip())
    return " ".join(texts)


def normaliser_for(processor):
    """Whisper's English normaliser when the checkpoint ships it, else basic_normalise."""
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is not None and getattr(tokenizer, "english_spelling_normalizer", None):
        return tokenizer.normalize
    return basic_normalise
