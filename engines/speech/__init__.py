"""Zero-shot speech: text to speech (Pocket TTS) and voice conversion (kNN-VC), with timbre and
speaking style taken from different speakers on request.

The engine module (and torch with it) is imported on first use, so the app starts light.
"""

from .requests import OUTPUT_RATE, TTSRequest, VCRequest
from .results import SpeechResult
from .text import MAX_TEXT_CHARS

__all__ = [
    "MAX_TEXT_CHARS",
    "OUTPUT_RATE",
    "SpeechEngine",
    "SpeechResult",
    "TTSRequest",
    "VCRequest",
]


def __getattr__(name: str):
    if name == "SpeechEngine":
        from . import engine

        return engine.SpeechEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
