"""What the GAN engine returns: the adapted generator with its before/after grid, loss curves and
metrics; or a batch of samples. Saved in the common layout: the files below, `metrics.json` and
`recipe.json`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from PIL import Image

from ..base import Result
from ..metric_labels import Metric, MetricLabels
from ..outputs import png_bytes, write_bytes
from .checkpoint import build_generator, checkpoint_bytes
from .history import history_csv
from .stylegan2 import Generator

GENERATOR_FILE = "adapted.pt"
GRID_FILE = "before_after.png"
LOSSES_FILE = "losses.csv"


METRIC_LABELS = MetricLabels(
    {
        "iterations_done": Metric("iterations done", "", "of the requested iterations"),
        "micro_batch": Metric(
            "micro-batch", "", "samples per forward pass; gradients added over the batch"
        ),
        "adapt_seconds": Metric("adaptation time", "s", "training, models loaded"),
        "setup_seconds": Metric("setup time", "s", "copying the generator, stage 1"),
        "iterations_per_second": Metric("speed", "it/s", "training iterations per second"),
        "seconds": Metric("time", "s", "sampling, models loaded"),
        "resolution": Metric("resolution", "px", "the generator's output size"),
        "samples": Metric("samples", "", "images the metrics are measured on"),
        "clip_target_score_before": Metric(
            "CLIP score to target, before", "", "samples vs target text, before adapting"
        ),
        "clip_target_score_after": Metric(
            "CLIP score to target, after", "", "samples vs target text, after adapting"
        ),
        "clip_direction_alignment": Metric(
            "CLIP direction alignment", "", "image change vs text change, cosine"
        ),
        "diversity_clip_before": Metric("diversity, before", "", "mean pairwise CLIP distance"),
        "diversity_clip_after": Metric("diversity, after", "", "mean pairwise CLIP distance"),
        "diversity_clip": Metric("diversity", "", "mean pairwise CLIP distance"),
        "clip_target_score": Metric("CLIP score to text", "", "samples vs the text given"),
        "variation_target_cos": Metric(
            "variations vs target", "", "SVL stage 1: cosine of the variations to the target"
        ),
        "variation_pairwise_abs_cos": Metric(
            "variations vs each other", "", "SVL stage 1: mean |cosine| between variations"
        ),
    }
)


@dataclass
class GanAdaptResult(Result):
    """Files: `adapted.pt` ({"g_ema", "latent_avg"}), `before_after.png`, `losses.csv`."""

    metric_labels: ClassVar[MetricLabels] = METRIC_LABELS

    before_after: Image.Image | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    generator_state: dict[str, torch.Tensor] = field(default_factory=dict)
    latent_avg: torch.Tensor | None = None
    iterations_done: int = 0
    cancelled: bool = False
    notes: list[str] = field(default_factory=list)

    def generator(self) -> Generator:
        """The adapted generator, rebuilt from its state dict (strict)."""
        return build_generator(self.generator_state, "adapted generator")

    def generator_bytes(self) -> bytes:
        return checkpoint_bytes(self.generator(), self.latent_avg)

    def save_generator(self, path: str | Path) -> Path:
        """Only the adapted generator, at `path`."""
        return write_bytes(Path(path), self.generator_bytes())

    def output_summary(self) -> dict[str, Any]:
        return {
            "iterations_done": self.iterations_done,
            "cancelled": self.cancelled,
            "grid_size": list(self.before_after.size) if self.before_after else None,
            "generator_tensors": len(self.generator_state),
        }

    def files(self) -> dict[str, bytes]:
        files = {GENERATOR_FILE: self.generator_bytes()}
        if self.before_after is not None:
            files[GRID_FILE] = png_bytes(self.before_after)
        files[LOSSES_FILE] = history_csv(self.history).encode("utf-8")
        return files


@dataclass
class GanSampleResult(Result):
    """Files: `sample_000.png` ... and the grid of them, `samples.png`."""

    metric_labels: ClassVar[MetricLabels] = METRIC_LABELS

    images: list[Image.Image] = field(default_factory=list)
    grid: Image.Image | None = None

    def output_summary(self) -> dict[str, Any]:
        return {
            "images": len(self.images),
            "size": list(self.images[0].size) if self.images else None,
        }

    def files(self) -> dict[str, bytes]:
        files = {
            f"sample_{index:03d}.png": png_bytes(image) for index, image in enumerate(self.images)
        }
        if self.grid is not None:
            files["samples.png"] = png_bytes(self.grid)
        return files
