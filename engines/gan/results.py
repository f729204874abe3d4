"""What the GAN engine returns: the adapted generator with its before/after grid, loss curves and
metrics; or a batch of samples."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..base import Result
from .checkpoint import build_generator, save_generator
from .history import LOSS_LABELS, loss_rows, write_history  # noqa: F401 (also importable here)
from .stylegan2 import Generator


@dataclass
class GanAdaptResult(Result):
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

    def loss_rows(self) -> list[dict[str, Any]]:
        return loss_rows(self.history)

    def save_generator(self, path: str | Path) -> Path:
        return save_generator(self.generator(), path, self.latent_avg)

    def output_summary(self) -> dict[str, Any]:
        return {
            "iterations_done": self.iterations_done,
            "cancelled": self.cancelled,
            "grid_size": list(self.before_after.size) if self.before_after else None,
            "generator_tensors": len(self.generator_state),
        }

    def save(self, folder: str | Path) -> list[Path]:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        return self.save_as(folder / "adapted.pt", folder / "before_after.png", folder)

    def save_as(self, generator: Path, grid: Path, folder: Path, prefix: str = "") -> list[Path]:
        """Write the generator, the before/after grid, and `<prefix>losses.csv`,
        `<prefix>metrics.json`, `<prefix>recipe.json` in `folder`."""
        written = [self.save_generator(generator)]
        if self.before_after is not None:
            self.before_after.save(grid)
            written.append(grid)
        written.append(write_history(self.history, folder / f"{prefix}losses.csv"))
        metrics = folder / f"{prefix}metrics.json"
        metrics.write_text(json.dumps(self.metrics, indent=2, default=str) + "\n", "utf-8")
        written.append(metrics)
        written.append(self.recipe.save(folder / f"{prefix}recipe.json"))
        return written


@dataclass
class GanSampleResult(Result):
    images: list[Image.Image] = field(default_factory=list)
    grid: Image.Image | None = None

    def output_summary(self) -> dict[str, Any]:
        return {
            "images": len(self.images),
            "size": list(self.images[0].size) if self.images else None,
        }

    def save(self, folder: str | Path) -> list[Path]:
        folder = Path(folder)
        written = super().save(folder)
        for index, image in enumerate(self.images):
            path = folder / f"sample_{index:03d}.png"
            image.save(path)
            written.append(path)
        if self.grid is not None:
            self.grid.save(folder / "samples.png")
            written.append(folder / "samples.png")
        return written
