"""Loading the speech components, each group when a request first needs it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..hashing import file_sha256
from ..loading import pretrained, pretrained_files
from ..parts import LoadContext
from ..registry import ResolvedModel

if TYPE_CHECKING:
    from .vc import KnnVC


def _pretrained(resolved: ResolvedModel, model_class, processor_class) -> dict[str, Any]:
    """A transformers model (float32) and its processor from one folder; unreadable folders
    become ModelUnavailable naming the component."""
    import torch

    model = pretrained(resolved, model_class, dtype=torch.float32)
    processor = pretrained_files(resolved, processor_class)
    return {"model": model.eval(), "processor": processor}


def load_speaker(context: LoadContext) -> dict[str, Any]:
    from transformers import AutoFeatureExtractor, WavLMForXVector

    loaded = _pretrained(context.resolve("speaker"), WavLMForXVector, AutoFeatureExtractor)
    loaded["model"].to(context.device.torch_device)
    return loaded


def load_asr(context: LoadContext) -> dict[str, Any]:
    from transformers import AutoProcessor, WhisperForConditionalGeneration

    loaded = _pretrained(context.resolve("asr"), WhisperForConditionalGeneration, AutoProcessor)
    loaded["model"].to(context.device.torch_device)
    return loaded


def load_tts(context: LoadContext):
    from .tts import load_voice_cloner

    def resolve(component: str, source: str | None = None) -> ResolvedModel:
        """A component as the registry says, or from `source` (a path or owner/repo[@rev])."""
        if source is None:
            return context.resolve(component)
        resolved = context.registry.resolve_from(context.engine, component, source)
        context.sources[component] = resolved.recipe_entry()
        return resolved

    return load_voice_cloner(context.resolve("tts"), resolve, context.device.torch_device)


def load_knn_vc(context: LoadContext) -> KnnVC:
    from .vc import KnnVC, load_vocoder, load_wavlm

    device = context.device.torch_device
    vocoder = context.resolve("vocoder")
    knn_vc = KnnVC(load_wavlm(context.resolve("wavlm"), device), load_vocoder(vocoder, device))
    # the vocoder has no published checksum: record the one of the file actually used
    context.sources["vocoder"]["sha256"] = file_sha256(vocoder.path)
    return knn_vc


PARTS = {"speaker": load_speaker, "asr": load_asr, "tts": load_tts, "knn_vc": load_knn_vc}
"""Component groups by name: the speaker model for metrics, Whisper, the TTS backend, kNN-VC."""
