"""What a user asks the GAN engine for: an adaptation, or samples from an adapted generator."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..base import Request
from ..errors import InputError
from .settings import METHODS, AdaptSettings

MAX_ITERATIONS = 5000
DEFAULT_BATCH = {"svl": 4, "nada": 2}


def _same_text(a: str, b: str) -> bool:
    def canon(text: str) -> str:
        return re.sub(r"\s+", " ", text.strip().casefold().rstrip("."))

    return canon(a) == canon(b)


def _check_range(name: str, value, low, high) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"{name} must be a finite number, got {value}.")
    if not low <= value <= high:
        raise InputError(f"{name} must be between {low} and {high}, got {value}.")


@dataclass
class AdaptRequest(Request):
    """Adapt a pretrained StyleGAN2 from `source` to `target` text, with no training images."""

    source: str = ""
    target: str = ""
    model: str = "cat256"
    method: str = "svl"
    iterations: int = 300
    seed: int = 0
    batch: int = 4
    lr: float = 0.002
    preview_every: int = 25
    truncation: float = 0.7
    train_truncation: float = 1.0
    second_clip: bool = False
    grid_size: int = 6
    eval_samples: int = 16
    # NADA
    layer_k: int = 0
    # SVL
    variations: int = 6
    lambda_div: float = 1.0
    stage1_iterations: int = 2000
    lambda_cov: float = 1e3
    lambda_ewc: float = 1e7
    lambda_rel: float = 1e2

    def validate(self) -> None:
        if not self.source.strip() or not self.target.strip():
            raise InputError(
                "Give both a source text (what the generator makes now, e.g. 'photo') and a "
                "target text (what it should make, e.g. 'Pixar character')."
            )
        if _same_text(self.source, self.target):
            raise InputError(
                "Source and target texts are the same, so there is no direction to adapt along; "
                "change the target text."
            )
        if self.method not in METHODS:
            raise InputError(f"Unknown method {self.method!r}; choose one of {', '.join(METHODS)}.")
        _check_range("iterations", self.iterations, 1, MAX_ITERATIONS)
        _check_range("batch", self.batch, 1, 32)
        if self.method == "svl" and self.batch < (3 if self.lambda_rel else 2):
            raise InputError(
                "SVL compares samples within a batch (covariance, relation consistency): use a "
                "batch of at least 3 (2 with the relation weight set to 0)."
            )
        _check_range("learning rate", self.lr, 1e-6, 1.0)
        _check_range("preview every", self.preview_every, 1, MAX_ITERATIONS)
        _check_range("truncation", self.truncation, 0.0, 1.0)
        _check_range("training truncation", self.train_truncation, 0.0, 1.0)
        _check_range("grid size", self.grid_size, 1, 16)
        _check_range("evaluation samples", self.eval_samples, 2, 512)
        _check_range("layer k", self.layer_k, 0, 64)
        _check_range("variations", self.variations, 1, 64)
        _check_range("stage 1 iterations", self.stage1_iterations, 0, 100_000)
        for name in ("lambda_div", "lambda_cov", "lambda_ewc", "lambda_rel"):
            _check_range(name, getattr(self, name), 0.0, 1e12)

    def settings(self) -> AdaptSettings:
        return AdaptSettings(
            method=self.method,
            source=self.source.strip(),
            target=self.target.strip(),
            iterations=self.iterations,
            batch=self.batch,
            lr=self.lr,
            seed=self.seed,
            train_truncation=self.train_truncation,
            preview_every=self.preview_every,
            layer_k=self.layer_k,
            variations=self.variations,
            lambda_div=self.lambda_div,
            stage1_iterations=self.stage1_iterations,
            lambda_cov=self.lambda_cov,
            lambda_ewc=self.lambda_ewc,
            lambda_rel=self.lambda_rel,
        )


@dataclass
class SampleRequest(Request):
    """Draw images from an adapted generator file ({"g_ema": state_dict})."""

    checkpoint: str = ""
    count: int = 8
    seed: int = 0
    truncation: float = 0.7
    target: str = ""

    def validate(self) -> None:
        if not str(self.checkpoint).strip():
            raise InputError("Choose an adapted generator (.pt) to sample from.")
        _check_range("count", self.count, 1, 64)
        _check_range("truncation", self.truncation, 0.0, 1.0)
