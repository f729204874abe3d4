"""What the speech engine is asked: say a text (TTSRequest) or convert a recording (VCRequest)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, ClassVar

from ..base import Request
from ..errors import InputError
from ..fields import flag, integer, number, seed, text, value
from .audio import AudioSource
from .knn import DEFAULT_K
from .text import MAX_TEXT_CHARS, split_sentences

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


def _optional_clip(source: AudioSource | None) -> AudioSource | None:
    """An empty upload (None or "") means no clip."""
    return None if isinstance(source, str) and not source.strip() else source


def _wer_flag():
    return flag(
        False, "transcribe with Whisper and report the word error rate", label="word error rate"
    )


class _ClipsRequest(Request):
    """A request that takes audio clips: `clips` are required, `style` is optional."""

    clips: ClassVar[tuple[str, ...]] = ()

    def check_clips(self) -> None:
        for role in self.clips:
            _check_clip_given(getattr(self, role), role)
        self.style = _optional_clip(self.style)
        if self.style is not None:
            _check_clip_given(self.style, "style")

    def to_params(self) -> dict[str, Any]:
        params = dataclasses.asdict(self)
        for role in (*self.clips, "style"):
            params[role] = _clip_param(getattr(self, role))
        return params


@dataclass
class TTSRequest(_ClipsRequest):
    """Say `text` in the voice of `voice`; with `style`, in the speaking style of `style`."""

    task: ClassVar[str] = "tts"
    clips = ("voice",)

    text: str = text(
        "",
        "what to say; spoken sentence by sentence",
        label=f"text (at most {MAX_TEXT_CHARS} characters)",
        max_length=MAX_TEXT_CHARS,
        cli=None,
    )
    voice: AudioSource | None = value(help="voice (timbre) reference clip", required=True)
    style: AudioSource | None = value(help="speaking-style reference clip (optional)")
    temperature: float = number(
        0.7, 0.0, 1.5, "sampling noise; 0.7 is the model's default", step=0.05
    )
    pause_seconds: float = number(
        0.25,
        0.0,
        2.0,
        "silence between sentences",
        label="pause",
        unit="s",
        step=0.05,
        cli=("--pause",),
    )
    seed: int = seed()
    wer: bool = _wer_flag()

    def check(self) -> None:
        split_sentences(self.text)  # raises on empty or too long text
        self.check_clips()


@dataclass
class VCRequest(_ClipsRequest):
    """Say what `source` says in the voice of `voice`; with `style`, in `style`'s manner."""

    task: ClassVar[str] = "vc"
    clips = ("source", "voice")

    source: AudioSource | None = value(help="the recording to convert", required=True)
    voice: AudioSource | None = value(help="target voice (timbre) clip", required=True)
    style: AudioSource | None = value(help="speaking-style reference clip (optional)")
    k: int = integer(DEFAULT_K, 1, 32, "neighbours averaged per frame; kNN-VC uses 4")
    wer: bool = _wer_flag()

    def check(self) -> None:
        self.check_clips()
