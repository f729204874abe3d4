"""Upload widgets that answer an unreadable file with a message of ours. Gradio decodes an
upload before the handler runs; when that fails (a text file named .png) it would otherwise
show a bare "Error"."""

from __future__ import annotations

from typing import Any

import gradio as gr


def unreadable(payload: Any, kind: str) -> str:
    name = getattr(payload, "orig_name", None) or "The uploaded file"
    return f"{name} cannot be read as {kind}; upload another file."


class _ReadableUpload:
    kind = "a file"

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except gr.Error:
            raise
        except Exception as err:  # whatever the decoder raised, the user sees one sentence
            raise gr.Error(unreadable(payload, self.kind), print_exception=False) from err

from gradio.events import Dependency

class ImageInput(gr.Image):
    """gr.Image for uploads."""

    is_template = True

    def preprocess(self, payload):
        return checked_preprocess(self, payload, "an image (PNG, JPEG, WebP ...)")
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component


class AudioInput(gr.Audio):
    """gr.Audio for uploads and recordings."""

    is_template = True

    def preprocess(self, payload):
        return checked_preprocess(self, payload, "audio (WAV, FLAC, OGG, MP3 ...)")
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component