"""Upload widgets that answer an unreadable file with a message of ours. Gradio decodes an
upload before the handler runs; when that fails (a text file named .png) it would otherwise
show a bare "Error"."""

from __future__ import annotations

from typing import Any

import gradio as gr

IMAGE = "an image (PNG, JPEG, WebP ...)"


MAX_IMAGE_SIDE = 4096
"""Gradio decodes an image upload before any handler sees it: Pillow is told to refuse one
over this many pixels a side (twice the area of MAX_IMAGE_SIDE**2 raises) from its header,
before decoding. Engines keep their own, smaller limits."""


def limit_image_decoding() -> None:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_SIDE * MAX_IMAGE_SIDE


def unreadable(payload: Any, kind: str, err: BaseException | None = None) -> str:
    from PIL import Image

    name = getattr(payload, "orig_name", None) or "The uploaded file"
    if isinstance(err, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return f"{name} is too large: images up to {MAX_IMAGE_SIDE} px a side can be uploaded."
    return f"{name} cannot be read as {kind}; upload another file."


def readable(component: gr.components.Component, kind: str) -> gr.components.Component:
    """The component, its preprocessing failures turned into one sentence for the user.
    (An instance attribute, not a subclass: Gradio writes a .pyi file beside every component
    class it sees defined.)"""
    decode = component.preprocess

    def preprocess(payload):
        try:
            return decode(payload)
        except gr.Error:
            raise
        except Exception as err:  # whatever the decoder raised, the user sees one sentence
            raise gr.Error(unreadable(payload, kind, err), print_exception=False) from err

    component.preprocess = preprocess
    return component


def image_input(**options) -> gr.Image:
    return readable(gr.Image(**options), IMAGE)
