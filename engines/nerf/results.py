"""What the NeRF engine returns: a scene file (fitted or edited), an orbit video, a still, the
loss history and the metrics measured on them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..base import Result
from ..metric_labels import Metric, MetricLabels
from ..outputs import png_bytes

METRIC_LABELS = MetricLabels(
    {
        "heldout_psnr_rgb": Metric("held-out PSNR, RGB head", "dB", "views left out of the fit"),
        "heldout_psnr_latent": Metric(
            "held-out PSNR, decoded latent", "dB", "views left out of the fit"
        ),
        "heldout_psnr_vae_roundtrip": Metric(
            "held-out PSNR, VAE round trip", "dB", "the ceiling the latent path can reach"
        ),
        "heldout_ssim_rgb": Metric("held-out SSIM, RGB head", "", "1 is identical"),
        "heldout_ssim_latent": Metric("held-out SSIM, decoded latent", "", "1 is identical"),
        "heldout_ssim_vae_roundtrip": Metric("held-out SSIM, VAE round trip", "", "the ceiling"),
        "steps_done": Metric("steps done", "", "of the requested steps"),
        "run_seconds": Metric("run time", "s", "models loaded"),
        "median_step_seconds": Metric("median step", "s", "one fit or edit step"),
        "render_seconds": Metric("render time", "s", "the orbit video"),
        "seconds_per_frame": Metric("per frame", "s", "rendering one orbit frame"),
        "clip_direction_similarity": Metric(
            "CLIP direction similarity", "", "image change vs text change (InstructPix2Pix)"
        ),
        "clip_direction_consistency": Metric(
            "CLIP direction consistency", "", "the change agreeing between neighbouring views"
        ),
        "clip_target_score_original": Metric(
            "CLIP score to target, before", "", "original views vs the target prompt"
        ),
        "clip_target_score_edited": Metric(
            "CLIP score to target, after", "", "edited views vs the target prompt"
        ),
    }
)


@dataclass
class NerfResult(Result):
    metric_labels: ClassVar[MetricLabels] = METRIC_LABELS
    task: str = "reconstruct"
    scene: bytes | None = None  # the .nerf file
    video: bytes | None = None  # H.264 mp4
    still: Any = None  # (H, W, 3) uint8
    preview: Any = None  # (H, W, 3) uint8: held-out view (reconstruct) or last edit preview
    history: list[dict[str, float]] = field(default_factory=list)
    steps_done: int = 0
    cancelled: bool = False
    notes: list[str] = field(default_factory=list)
    # an edit's orbit frames, (H, W, 3) uint8, original and edited: what its metrics measured
    orbit_original: list[Any] = field(default_factory=list)
    orbit_edited: list[Any] = field(default_factory=list)

    SCENE_NAMES = {"reconstruct": "scene.nerf", "edit": "edited.nerf"}

    def output_summary(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "steps_done": self.steps_done,
            "cancelled": self.cancelled,
            "scene_bytes": len(self.scene) if self.scene else 0,
            "video_bytes": len(self.video) if self.video else 0,
            "notes": self.notes,
        }

    def files(self) -> dict[str, bytes]:
        files: dict[str, bytes] = {}
        if self.scene is not None:
            files[self.SCENE_NAMES.get(self.task, "scene.nerf")] = self.scene
        if self.video is not None:
            files["orbit.mp4"] = self.video
        if self.still is not None:
            files["still.png"] = png_bytes(self.still)
        if self.preview is not None:
            files["preview.png"] = png_bytes(self.preview)
        if self.history:
            files["losses.json"] = (json.dumps(self.history) + "\n").encode("utf-8")
        return files
