"""Automatic subject cut-out: CLIPSeg (`CIDAS/clipseg-rd64-refined`, Apache-2.0) segments the
subject phrase in the photo; its probability map becomes the subject's alpha."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

from ..errors import InputError
from ..loading import pretrained, pretrained_files
from ..parts import LoadContext
from .subject import Subject

LOW, HIGH = 0.3, 0.6  # probability ramp: below LOW background, above HIGH subject


def load_segmenter(context: LoadContext) -> dict[str, Any]:
    from transformers import CLIPSegForImageSegmentation, CLIPSegProcessor

    resolved = context.resolve("segmenter")
    model = pretrained(resolved, CLIPSegForImageSegmentation, dtype=torch.float32)
    model.to(context.device.torch_device).eval().requires_grad_(False)
    return {"model": model, "processor": pretrained_files(resolved, CLIPSegProcessor)}


@torch.no_grad()
def cut_out(segmenter: dict[str, Any], subject: Subject, phrase: str) -> Subject:
    """The subject with an alpha from CLIPSeg's map of `phrase`, upsampled to the photo."""
    model, processor = segmenter["model"], segmenter["processor"]
    image = Image.fromarray(subject.rgb)
    inputs = processor(text=[phrase], images=[image], return_tensors="pt", padding=True)
    logits = model(**inputs.to(model.device)).logits
    logits = logits.reshape(1, 1, *logits.shape[-2:])  # one map, at the input's size
    probs = torch.sigmoid(logits.float())
    probs = torch.nn.functional.interpolate(
        probs, size=subject.rgb.shape[:2], mode="bilinear", align_corners=False
    )[0, 0]
    alpha = ((probs - LOW) / (HIGH - LOW)).clamp(0, 1).cpu().numpy().astype(np.float32)
    if not (alpha > 0.5).any():
        raise InputError(
            f"Background removal found no {phrase!r} in the subject photo; upload an RGBA "
            "cut-out or a mask instead."
        )
    return Subject(subject.rgb, alpha)
