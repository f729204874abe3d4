"""An open-vocabulary detector (Grounding DINO by default) finding a phrase in an image, and
IoU to compare its boxes with the ones drawn: the layout score and the video's box metrics.
Each engine loads it from its own registry component named `detector`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .device import DeviceSpec
from .loading import pretrained, pretrained_files
from .parts import LoadContext
from .registry import ResolvedModel

BOX_THRESHOLD = 0.3
TEXT_THRESHOLD = 0.25

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Detection:
    box: Box  # x0, y0, x1, y1 in image pixels
    score: float


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes; 0 when either is empty."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area_a = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    area_b = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


class GroundingDetector:
    """Detects one phrase at a time, so every detection belongs to the phrase it was asked."""

    def __init__(self, resolved: ResolvedModel, device: DeviceSpec):
        from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

        self.device = device.torch_device
        self.processor = pretrained_files(resolved, AutoProcessor)
        # float32 whatever the pipeline's dtype: the detector is small, its box decoding is not
        # robust in half precision.
        self.model = pretrained(resolved, AutoModelForZeroShotObjectDetection, dtype=torch.float32)
        self.model.to(self.device).eval().requires_grad_(False)

    @torch.no_grad()
    def detect(self, image, phrase: str, threshold: float = BOX_THRESHOLD) -> list[Detection]:
        text = phrase.strip().lower().rstrip(".") + "."
        inputs = self.processor(images=image, text=text, return_tensors="pt").to(self.device)
        outputs = self.model(**inputs)
        (found,) = self.processor.post_process_grounded_object_detection(
            outputs,
            inputs["input_ids"],
            threshold=threshold,
            text_threshold=TEXT_THRESHOLD,
            target_sizes=[(image.height, image.width)],
        )
        # Predicted boxes may overhang the image; only the visible part can match a layout box.
        limits = torch.tensor([image.width, image.height] * 2, dtype=torch.float32)
        boxes = torch.minimum(found["boxes"].float().cpu().clamp(min=0), limits)
        return [
            Detection(tuple(float(c) for c in box), float(score))
            for box, score in zip(boxes, found["scores"].cpu(), strict=True)
        ]

    def detect_phrases(self, image, phrases: Sequence[str]) -> dict[str, list[Detection]]:
        return {phrase: self.detect(image, phrase) for phrase in dict.fromkeys(phrases)}


def load_detector(context: LoadContext) -> GroundingDetector:
    return GroundingDetector(context.resolve("detector"), context.device)
