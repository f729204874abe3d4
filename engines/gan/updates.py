"""What an adaptation reports back while it runs, without torch: the tab imports this at app
start, the adaptation loop (adapt.py) when it runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
