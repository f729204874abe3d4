"""What a user asks the GAN engine for: an adaptation, or samples from an adapted generator.
Each field is declared once (default, range, label, help); the CLI and the tab derive from it."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import ClassVar

from ..base import Request
from ..errors import InputError
from ..fields import choice, flag, integer, number, seed, text, value

METHODS = ("svl", "nada")
METHOD_LABELS = ("SVL: semantic variations", "StyleGAN-NADA")
DEFAULT_BATCH = {"svl": 4, "nada": 2}
"""Each method's batch when none is given (the papers': SVL 4, NADA 2)."""
MAX_ITERATIONS = 5000
MAX_WEIGHT = 1e12


def _same_text(a: str, b: str) -> bool:
    def canon(text: str) -> str:
        return re.sub(r"\s+", " ", text.strip().casefold().rstrip("."))

    return canon(a) == canon(b)


def _weight(default: float, help: str, label: str):
    """A loss weight: 0 (the term off) to MAX_WEIGHT, in a number box."""
    return number(default, 0.0, MAX_WEIGHT, help, label=label, widget="number")


@dataclass
class AdaptRequest(Request):
    """Adapt a pretrained StyleGAN2 from `source` to `target` text, with no training images."""

    task: ClassVar[str] = "adapt"
    source: str = text("photo", 'what the generator makes now, e.g. "photo"', label="source text")
    target: str = text("", 'what it should make, e.g. "Pixar character"', label="target text")
    model: str = text(
        "cat256", "a registry generator (zsstudio models)", label="pretrained generator"
    )
    method: str = choice(
        "svl", METHODS, "semantic variations (SVL) or StyleGAN-NADA", labels=METHOD_LABELS
    )
    iterations: int = integer(300, 1, MAX_ITERATIONS, "training steps", widget="number", cpu=6)
    seed: int = seed(help="the same seed gives the same samples, grids and result")
    batch: int | None = integer(
        None,
        1,
        32,
        "W samples per step; if not given, the method's: "
        f"SVL {DEFAULT_BATCH['svl']}, NADA {DEFAULT_BATCH['nada']}",
        optional=True,
        widget="number",
    )
    micro_batch: int | None = integer(
        None,
        1,
        32,
        "samples per forward and backward pass; the gradients of the batch's passes are added, "
        "so the update is the whole batch's (to float rounding) with less memory and some more "
        "time; if not given: one on a CPU (the faster there) or with --low-memory, else the "
        "whole batch when it fits the free memory by our estimate, or as many as fit",
        label="micro-batch",
        optional=True,
        widget="number",
    )
    lr: float = number(
        0.002, 1e-6, 1.0, "Adam, betas (0, 0.99)", label="learning rate", widget="number"
    )
    preview_every: int = integer(
        25,
        1,
        MAX_ITERATIONS,
        "steps between live previews",
        label="preview every",
        unit="steps",
        cpu=2,
    )
    truncation: float = number(
        0.7, 0.0, 1.0, "truncation of W for the grids and the metrics (1: none)", step=0.05
    )
    train_truncation: float = number(
        1.0,
        0.0,
        1.0,
        "truncation of W for the training samples; 1 (none) as StyleGAN-NADA trains",
        label="training truncation",
        step=0.05,
    )
    grid_size: int = integer(6, 1, 16, "seeds in the before/after grid", label="grid seeds", cpu=3)
    eval_samples: int = integer(
        16, 2, 512, "fixed samples the metrics are measured on", label="evaluation samples", cpu=4
    )
    second_clip: bool = flag(
        False, "add CLIP ViT-B/16 as a second critic (as NADA does)", label="second CLIP"
    )
    # NADA
    layer_k: int = integer(
        0,
        0,
        64,
        "NADA adaptive layer selection: train the k layers that move most (0: all)",
        label="layer k",
    )
    # SVL
    variations: int = integer(6, 1, 64, "SVL stage 1: variations K of the target text")
    lambda_div: float = _weight(
        1.0, "SVL stage 1: how hard the variations are pushed apart", "diversity weight lambda_div"
    )
    stage1_iterations: int = integer(
        2000,
        0,
        100_000,
        "SVL stage 1 steps (learning the variations)",
        label="stage 1 iterations",
        cpu=200,
    )
    lambda_cov: float = _weight(
        1e3,
        "SVL: the covariance term of the directional moment loss",
        "covariance weight lambda_cov",
    )
    lambda_ewc: float = _weight(
        1e7, "SVL: elastic weight consolidation (0: off)", "EWC weight lambda_ewc"
    )
    lambda_rel: float = _weight(
        1e2, "SVL: relation consistency within a batch (0: off)", "relation weight lambda_rel"
    )

    def check(self) -> None:
        self.source, self.target = self.source.strip(), self.target.strip()
        if not self.source or not self.target:
            raise InputError(
                "Give both a source text (what the generator makes now, e.g. 'photo') and a "
                "target text (what it should make, e.g. 'Pixar character')."
            )
        if _same_text(self.source, self.target):
            raise InputError(
                "Source and target texts are the same, so there is no direction to adapt along; "
                "change the target text."
            )
        if self.batch is None:
            self.batch = DEFAULT_BATCH[self.method]
        if self.method == "svl" and self.batch < (3 if self.lambda_rel else 2):
            raise InputError(
                "SVL compares samples within a batch (covariance, relation consistency): use a "
                "batch of at least 3 (2 with the relation weight set to 0)."
            )


@dataclass
class SampleRequest(Request):
    """Draw images from an adapted generator file ({"g_ema": state_dict})."""

    task: ClassVar[str] = "sample"

    checkpoint: str = value(
        "", help="an adapted generator file (.pt)", label="adapted generator", required=True
    )
    count: int = integer(8, 1, 64, "images to draw", label="samples", cli=("-n", "--count"))
    seed: int = seed()
    truncation: float = number(0.7, 0.0, 1.0, "truncation of W (1: none)", step=0.05)
    target: str = text(
        "",
        "also report the CLIP score of the samples to this text",
        label="score against text",
    )

    def check(self) -> None:
        self.target = self.target.strip()
        if isinstance(self.checkpoint, os.PathLike):
            self.checkpoint = os.fspath(self.checkpoint)
        if self.checkpoint is None or (
            isinstance(self.checkpoint, str) and not self.checkpoint.strip()
        ):
            raise InputError("Choose an adapted generator (.pt) to sample from.")
        if not isinstance(self.checkpoint, str):
            raise InputError(
                f"The adapted generator must be a file path, got {type(self.checkpoint).__name__}."
            )
