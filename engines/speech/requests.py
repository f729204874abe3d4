"""What the speech engine is asked (TTSRequest, VCRequest) and what it returns (SpeechResult)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..base import Request, Result
from ..errors import InputError
from .audio import AudioSource, write_synthetic_wav
from .knn import DEFAULT_K
from .text import split_sentences

OUTPUT_RATE = 24000
PROMPT_SECONDS = (3.0, 15.0)  # a voice prompt's useful length: shorter clones worse
MATCHING_MAX_SECONDS = 300.0  # kNN-VC gains flatten past about 5 minutes of reference
SOURCE_MAX_SECONDS = 300.0
STYLE_MAX_SECONDS = 60.0
MATCHING_GOOD_SECONDS = 30.0
IN_MEMORY = "<in-memory audio>"


def _clip_param(source: AudioSource | None) -> str | None:
    """How a clip is written in a recipe: its path, or a marker for in-memory samples."""
    if source is None:
        return None
    return IN_MEMORY if isinstance(source, tuple) else os.fspath(source)


def _check_clip_given(source: AudioSource | None, role: str) -> None:
    if source is None or (isinstance(source, str) and not source.strip()):
        raise InputError(f"No {role} clip: upload or record one.")
    if source == IN_MEMORY:
        raise InputError(
            f"This recipe was made from in-memory {role} audio; pass the clip as a file."
        )


@dataclass
class TTSRequest(Request):
    """Say `text` in the voice of `voice`; with `style`, in the speaking style of `style`."""

    text: str = ""
    voice: AudioSource | None = None
    style: AudioSource | None = None
    temperature: float = 0.7
    pause_seconds: float = 0.25
    seed: int = 0
    wer: bool = False

    task: ClassVar[str] = "tts"

    def validate(self) -> None:
        split_sentences(self.text)  # raises on empty or too long text
        _check_clip_given(self.voice, "voice")
        if self.style is not None:
            _check_clip_given(self.style, "style")
        if not 0.0 <= self.temperature <= 1.5:
            raise InputError("temperature must be between 0 and 1.5 (0.7 is the model's default).")
        if not 0.0 <= self.pause_seconds <= 2.0:
            raise InputError("pause_seconds must be between 0 and 2.")

    def to_params(self) -> dict[str, Any]:
        params = dataclasses.asdict(self)
        params.update(voice=_clip_param(self.voice), style=_clip_param(self.style))
        return params


@dataclass
class VCRequest(Request):
    """Say what `source` says in the voice of `voice`; with `style`, in `style`'s manner."""

    source: AudioSource | None = None
    voice: AudioSource | None = None
    style: AudioSource | None = None
    k: int = DEFAULT_K
    wer: bool = False

    task: ClassVar[str] = "vc"

    def validate(self) -> None:
        _check_clip_given(self.source, "source")
        _check_clip_given(self.voice, "voice")
        if self.style is not None:
            _check_clip_given(self.style, "style")
        if not 1 <= int(self.k) <= 32:
            raise InputError("k must be between 1 and 32 (kNN-VC uses 4).")

    def to_params(self) -> dict[str, Any]:
        params = dataclasses.asdict(self)
        params.update(
            source=_clip_param(self.source),
            voice=_clip_param(self.voice),
            style=_clip_param(self.style),
        )
        return params


REQUESTS: dict[str, type[Request]] = {"tts": TTSRequest, "vc": VCRequest}


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

    def write_wav(self, path: str | os.PathLike) -> Path:
        what = "text to speech" if self.task == "tts" else "voice conversion"
        return write_synthetic_wav(path, self.audio, self.sample_rate, what)

    def save(self, folder: str | Path) -> list[Path]:
        folder = Path(folder)
        wav = self.write_wav(folder / f"{self.task}.wav")
        metrics = folder / "metrics.json"
        metrics.write_text(self.to_json() + "\n", encoding="utf-8")
        return [wav, metrics, self.recipe.save(folder / "recipe.json")]
