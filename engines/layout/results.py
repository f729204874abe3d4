"""What a layout run returns: the image, its overlay and heatmaps, and the box scores."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..base import Result, metrics_json
from ..metric_labels import Metric, MetricLabels
from ..outputs import png_bytes
from .requests import PhraseBox
from .scoring import BoxScore

METRIC_LABELS = MetricLabels(
    {
        "generation_s": Metric("generation time", "s", "denoising and decoding, models loaded"),
        "guided_steps": Metric("guided steps", "", "denoising steps with the layout guidance"),
        "mIoU": Metric("mean IoU", "", "boxes vs the detector's boxes of their phrases, 0 to 1"),
        "success@0.5": Metric(
            "boxes found (IoU >= 0.5)", "", "fraction of boxes the detector finds in place"
        ),
        "layout_score": Metric("layout score", "", "why no score was measured"),
        "nsfw_flagged": Metric("NSFW flagged", "", "the safety checker blanked the image"),
    }
)


@dataclass
class LayoutResult(Result):
    metric_labels: ClassVar[MetricLabels] = METRIC_LABELS
    image: Any = None  # PIL.Image
    overlay: Any = None  # the image with the boxes drawn
    heatmaps: list[tuple[Any, str]] = field(default_factory=list)  # (PIL.Image, caption)
    boxes: list[PhraseBox] = field(default_factory=list)  # in pixels
    scores: list[BoxScore] = field(default_factory=list)

    def output_summary(self) -> dict[str, Any]:
        return {
            "image": f"{self.image.width}x{self.image.height}" if self.image else None,
            "boxes": len(self.boxes),
            "heatmaps": len(self.heatmaps),
            "scores": [dataclasses.asdict(s) for s in self.scores],
        }

    def files(self) -> dict[str, bytes]:
        files = {}
        for name, picture in (("image.png", self.image), ("overlay.png", self.overlay)):
            if picture is not None:
                files[name] = png_bytes(picture)
        for index, ((picture, _), box) in enumerate(zip(self.heatmaps, self.boxes, strict=True), 1):
            slug = re.sub(r"[^a-z0-9]+", "-", box.phrase.lower()).strip("-") or "box"
            files[f"heatmap-{index}-{slug}.png"] = png_bytes(picture)
        if self.scores:
            rows = [dataclasses.asdict(s) for s in self.scores]
            files["scores.json"] = metrics_json({"boxes": rows, **self.metrics}).encode("utf-8")
        return files
