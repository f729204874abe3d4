"""What an adaptation is asked to do and what it reports back, without torch: the tab, the CLI
and the requests import these at app start, the adaptation loop (adapt.py) when it runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

METHODS = ("svl", "nada")


@dataclass
class AdaptSettings:
    """The hyperparameters of one adaptation (defaults: the methods file's)."""

    method: str
    source: str
    target: str
    iterations: int = 300
    batch: int = 4
    lr: float = 0.002
    beta2: float = 0.99
    seed: int = 0
    train_truncation: float = 1.0
    preview_every: int = 25
    # NADA: adaptive layer selection (0 keeps every synthesis layer trainable)
    layer_k: int = 0
    layer_probe_steps: int = 1
    # SVL stage 1
    variations: int = 6
    lambda_div: float = 1.0
    stage1_iterations: int = 2000
    stage1_lr: float = 0.01
    # SVL stage 2
    lambda_cov: float = 1e3
    lambda_ewc: float = 1e7
    lambda_rel: float = 1e2


@dataclass
class AdaptUpdate:
    """What the loop reports: the stage, the iteration, the last losses, maybe a preview."""

    stage: str  # "variations", "fisher", "adapt", "done"
    iteration: int
    total: int
    losses: dict[str, float] = field(default_factory=dict)
    preview: Any = None
    message: str = ""
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        return self.iteration / self.total if self.total else 0.0


def describe(update: AdaptUpdate) -> str:
    """One line for a progress bar or status box."""
    if update.stage == "adapt" and update.losses:
        return f"Iteration {update.iteration}/{update.total} · loss {update.losses['total']:.4f}"
    return update.message
