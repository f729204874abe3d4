"""What a subject-video run returns: the frames, the video with its boxes, a strip of frames."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from ..base import Result
from ..mp4 import mp4_bytes
from ..outputs import png_bytes
from .media import draw_boxes, frame_strip


@dataclass
class SubjectVideoResult(Result):
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
