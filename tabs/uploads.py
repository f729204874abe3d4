"""Every value Gradio cannot turn into a handler's input (a text file named .png, a number box
holding letters) answered with one sentence of ours, and whatever fails in Gradio's own
processing around a handler answered like a failure in the handler (`common.user_error`).

Gradio decodes an upload before the handler runs, and a session holds its own copy of a
component once an event updated it (an Example click does), so a wrapper on one component
would miss that copy: `explain_processing_errors` hooks the app's Blocks instead, where
every event's inputs are processed."""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

log = logging.getLogger("zsstudio")

IMAGE = "an image (PNG, JPEG, WebP ...)"
SOUND = "a sound file (WAV, FLAC, MP3 ...)"
VIDEO = "a video (MP4, WebM ...)"

MAX_IMAGE_SIDE = 4096
"""Gradio decodes an image upload before any handler sees it: Pillow is told to refuse one
over this many pixels a side (twice the area of MAX_IMAGE_SIDE**2 raises) from its header,
before decoding. Engines keep their own, smaller limits."""


def limit_image_decoding() -> None:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_SIDE * MAX_IMAGE_SIDE


def kind_of(component: Any) -> str:
    """What a file given to `component` should be, in words."""
    name = type(component).__name__.lower()
    if "image" in name:  # gr.Image, the annotator's canvas
        return IMAGE
    if "audio" in name:
        return SOUND
    if "video" in name:
        return VIDEO
    return "the kind of file asked for"


def _file_name(payload: Any) -> str | None:
    if isinstance(payload, dict):
        if isinstance(payload.get("image"), dict):  # the annotator: {"image": FileData, ...}
            payload = payload["image"]
        return payload.get("orig_name") or (payload.get("path") and "The file") or None
    return getattr(payload, "orig_name", None)


def unreadable(component: Any, payload: Any, err: BaseException | None = None) -> str:
    """The sentence a user reads when `payload` could not be made `component`'s input."""
    from PIL import Image

    name = _file_name(payload)
    if isinstance(err, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return f"{name or 'The image'} is too large: images up to {MAX_IMAGE_SIDE} px a side can be uploaded."
    if name:
        return f"{name} cannot be read as {kind_of(component)}; upload another file."
    label = getattr(component, "label", None) or type(component).__name__
    reason = str(err).splitlines()[0] if err is not None and str(err) else "not a valid value"
    return f"{label}: this value cannot be read ({reason})."


def explain_processing_errors(demo: gr.Blocks) -> gr.Blocks:
    """Make `demo` answer an input it cannot process with `unreadable`'s sentence, and any
    other failure of Gradio's processing (an output it cannot show) with an error id."""
    from gradio.exceptions import ComponentProcessingError

    from .common import user_error

    gradio_message = demo._format_processing_error
    preprocess_data, postprocess_data = demo.preprocess_data, demo.postprocess_data

    def message(block_fn, index, block, value, is_input, original_error) -> str:
        if not is_input:
            return gradio_message(block_fn, index, block, value, is_input, original_error)
        said = unreadable(block, value, original_error)
        log.info("%s: input refused: %s (%s)", block_fn.name, said, original_error)
        return said

    async def preprocess(block_fn, *args, **kwargs):
        try:
            return await preprocess_data(block_fn, *args, **kwargs)
        except gr.Error:
            raise
        except ComponentProcessingError as err:
            raise gr.Error(str(err), title="Cannot read an input", print_exception=False) from err
        except Exception as err:
            raise user_error(err, f"processing the inputs of {block_fn.name}") from err

    async def postprocess(block_fn, *args, **kwargs):
        try:
            return await postprocess_data(block_fn, *args, **kwargs)
        except gr.Error:
            raise
        except Exception as err:
            raise user_error(err, f"showing the outputs of {block_fn.name}") from err

    demo._format_processing_error = message
    demo.preprocess_data, demo.postprocess_data = preprocess, postprocess
    return demo


def image_input(**options) -> gr.Image:
    """An image upload (its unreadable files are answered by `explain_processing_errors`)."""
    return gr.Image(**options)
