"""What a subject-video run returns: the frames, the video with its boxes, a strip of frames."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import numpy as np

from ..base import Result
from ..metric_labels import Metric, MetricLabels
from ..mp4 import mp4_bytes
from ..outputs import png_bytes
from .media import draw_boxes, frame_strip

METRIC_LABELS = MetricLabels(
    {
        "generation_s": Metric("generation time", "s", "denoising and decoding, models loaded"),
        "box_mIoU": Metric("box mean IoU", "", "drawn vs detected subject box per frame, 0 to 1"),
        "box_detected_frames": Metric(
            "frames with the subject found", "", "fraction of frames the detector finds it in"
        ),
        "clip_t": Metric("CLIP-T", "", "frames vs prompt, CLIP cosine"),
        "temporal_consistency": Metric(
            "temporal consistency", "", "CLIP cosine of consecutive frames"
        ),
        "clip_i": Metric("CLIP-I", "", "frames vs subject photo, CLIP cosine"),
        "clip_i_box": Metric("CLIP-I in the box", "", "box crops vs subject photo"),
        "dino_i": Metric("DINO-I", "", "frames vs subject photo, DINO cosine"),
        "dino_i_box": Metric("DINO-I in the box", "", "box crops vs subject photo"),
    }
)


@dataclass
class SubjectVideoResult(Result):
    metric_labels: ClassVar[MetricLabels] = METRIC_LABELS
    frames: np.ndarray | None = None  # (F, H, W, 3) uint8
    boxes: np.ndarray | None = None  # (F, 4) fractions, or None without keyframes
    fps: int = 8
    phrase: str = ""
    # per frame, the detector's box of the subject phrase (fractions; None: not found), when
    # the box metrics were measured
    detections: list[tuple[float, float, float, float] | None] | None = None
    notes: list[str] = field(default_factory=list)  # e.g. a box clipped to the frame

    @cached_property
    def boxed_frames(self) -> np.ndarray | None:
        return None if self.boxes is None else draw_boxes(self.frames, self.boxes, self.phrase)

    @cached_property
    def video_mp4(self) -> bytes:
        return mp4_bytes(self.frames, self.fps)

    @cached_property
    def boxes_mp4(self) -> bytes | None:
        return None if self.boxes is None else mp4_bytes(self.boxed_frames, self.fps)

    def strip(self):
        return frame_strip(self.frames if self.boxes is None else self.boxed_frames)

    def output_summary(self) -> dict[str, Any]:
        count, height, width = self.frames.shape[:3]
        summary = {"frames": count, "size": f"{width}x{height}", "fps": self.fps}
        return {**summary, "notes": self.notes} if self.notes else summary

    def files(self) -> dict[str, bytes]:
        files = {"video.mp4": self.video_mp4, "frames.png": png_bytes(self.strip())}
        if self.boxes is not None:
            files["video-boxes.mp4"] = self.boxes_mp4
        return files
