"""What the speech engine returns: synthetic speech, its measurements, and notes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..base import Result
from ..metric_labels import Metric, MetricLabels
from ..outputs import write_bytes
from .audio import synthetic_wav_bytes
from .requests import OUTPUT_RATE

METRIC_LABELS = MetricLabels(
    {
        "duration_s": Metric("output length", "s", "length of the speech made"),
        "rtf": Metric("real-time factor", "", "seconds of compute per second of speech"),
        "rtf_generation": Metric(
            "real-time factor, TTS",
            "",
            "Pocket TTS: voice prompt, generation, decoding; per second of speech",
        ),
        "rtf_features": Metric(
            "real-time factor, WavLM", "", "WavLM features alone, per second of speech"
        ),
        "rtf_matching": Metric(
            "real-time factor, matching", "", "the kNN matching step alone, per second of speech"
        ),
        "rtf_vocoder": Metric(
            "real-time factor, vocoder", "", "the HiFi-GAN vocoder alone, per second of speech"
        ),
        "rtf_style": Metric(
            "real-time factor, style", "", "measuring and moving pitch, pace and level"
        ),
        "sentences": Metric("sentences", "", "spoken one after another"),
        "voice_prompt_s": Metric("voice clip used", "s", "length of the voice reference used"),
        "matching_set_s": Metric("voice matching set", "s", "reference speech kNN-VC matches"),
        "k": Metric("k", "", "nearest reference frames averaged per frame"),
        "similarity_output_vs_voice": Metric(
            "speaker similarity", "", "cosine of speaker embeddings, output vs voice clip"
        ),
        "wer": Metric("word error rate", "", "Whisper's transcript vs the text, 0 is perfect"),
        "wer_vs_source_transcript": Metric(
            "word error rate vs source", "", "Whisper on the output vs on the source"
        ),
        "transcript": Metric("transcript", "", "what Whisper heard in the output"),
        "source_transcript": Metric("source transcript", "", "what Whisper heard in the source"),
        "style_f0_median_hz": Metric("style pitch (median)", "Hz", "of the style clip"),
        "output_f0_median_hz": Metric("output pitch (median)", "Hz", "of the output"),
        "style_f0_range_st": Metric("style pitch range", "semitones", "of the style clip"),
        "output_f0_range_st": Metric("output pitch range", "semitones", "of the output"),
        "style_syllables_per_s": Metric("style pace", "syllables/s", "of the style clip"),
        "output_syllables_per_s": Metric("output pace", "syllables/s", "of the output"),
        "applied_duration_factor": Metric("duration factor applied", "", "PSOLA time stretch"),
        "applied_f0_range_factor": Metric("pitch range factor applied", "", "PSOLA pitch scale"),
    }
)


@dataclass
class SpeechResult(Result):
    """24 kHz synthetic speech, its measurements, and notes on what limited it."""

    metric_labels: ClassVar[MetricLabels] = METRIC_LABELS

    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    sample_rate: int = OUTPUT_RATE
    task: str = "tts"
    notes: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate

    def output_summary(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "duration_s": round(self.duration, 3),
            "sample_rate": self.sample_rate,
            "synthetic": True,
            "notes": self.notes,
        }

    def wav_bytes(self) -> bytes:
        what = "text to speech" if self.task == "tts" else "voice conversion"
        return synthetic_wav_bytes(self.audio, self.sample_rate, what)

    def write_wav(self, path: str | os.PathLike) -> Path:
        return write_bytes(Path(path), self.wav_bytes())

    def files(self) -> dict[str, bytes]:
        return {f"{self.task}.wav": self.wav_bytes()}
