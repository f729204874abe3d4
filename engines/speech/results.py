"""What the speech engine returns: synthetic speech, its measurements, and notes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..base import Result
from ..outputs import write_bytes
from .audio import synthetic_wav_bytes
from .requests import OUTPUT_RATE


@dataclass
class SpeechResult(Result):
    """24 kHz synthetic speech, its measurements, and notes on what limited it."""

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
