"""Zero-shot speech: text to speech (Pocket TTS) and voice conversion (kNN-VC), with timbre and
speaking style taken from different speakers on request."""

from .engine import SpeechEngine
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
