"""WavLM features for kNN-VC: the output of transformer layer 6, 50 frames a second."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import ModelUnavailable

if TYPE_CHECKING:
    import torch

WAVLM_RATE = 16000
WAVLM_LAYER = 6  # kNN-VC's choice: layer 6 of WavLM-Large keeps speaker and content
CHUNK_SECONDS = 20.0  # attention is quadratic in length: long clips go through in pieces


def check_wavlm(model, source: str = "speech.wavlm") -> None:
    layers = model.config.num_hidden_layers
    if layers < WAVLM_LAYER:
        raise ModelUnavailable(
            source,
            model.name_or_path,
            "Use microsoft/wavlm-large.",
            f"it has {layers} layers; kNN-VC reads layer {WAVLM_LAYER}",
        )


def wavlm_features(model, samples: np.ndarray, layer: int = WAVLM_LAYER) -> torch.Tensor:
    """(frames, hidden) features of 16 kHz mono samples, as float32 on the model's device.

    The features are the output of transformer layer `layer` as that layer returns it, read
    with a forward hook: what kNN-VC takes (`extract_features(output_layer=6)` in the original
    WavLM code, before the encoder's final layer norm). Reading `hidden_states[layer]` instead
    would depend on how the installed transformers reports hidden states: since the model is
    cut after `layer`, the last hidden state is layer-normed on transformers 4.x and not on 5.x.

    The raw waveform goes in unnormalised, as kNN-VC feeds WavLM (its vocoder was trained so).
    """
    import torch

    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    chunk = int(CHUNK_SECONDS * WAVLM_RATE)
    captured: list[torch.Tensor] = []

    def keep(_module, _inputs, output) -> None:
        captured.append(output[0] if isinstance(output, tuple) else output)

    hook = model.encoder.layers[layer - 1].register_forward_hook(keep)
    pieces = []
    try:
        with torch.inference_mode():
            for start in range(0, len(samples), chunk):
                piece = samples[start : start + chunk]
                if len(piece) < 400:  # shorter than WavLM's first convolution: no frame
                    continue
                wave = torch.from_numpy(np.ascontiguousarray(piece)).to(device, dtype)[None]
                captured.clear()
                model(wave)
                pieces.append(captured[-1][0].float())
    finally:
        hook.remove()
    return torch.cat(pieces)
