"""What the NeRF engine is asked: fit a scene (ReconstructRequest), edit a fitted scene with a
source and a target prompt (EditRequest), or render a scene file (RenderRequest)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, ClassVar

from ..base import Request
from ..errors import InputError
from ..fields import choice, integer, number, seed, text, value

EXAMPLE = "example"  # the built-in example scene (also engines.nerf.example.EXAMPLE)
MODES = ("dds", "sds")
WEIGHTINGS = ("1", "1 - alpha_bar")  # engines.nerf.guidance.WEIGHTINGS (no torch import here)
METRIC_MODELS = ("clip", "clip_l14")  # registry components [nerf.clip], [nerf.clip_l14]


def _path(value: Any, what: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InputError(f"No {what} given.")
    if not isinstance(value, (str, os.PathLike)):
        raise InputError(f"The {what} must be a file path, got {type(value).__name__}.")
    return os.fspath(value)


@dataclass
class ReconstructRequest(Request):
    """Fit a latent NeRF to a scene folder or zip (or the built-in example)."""

    task: ClassVar[str] = "reconstruct"
    scene: str | None = value(
        EXAMPLE,
        "a scene folder or zip (transforms.json, LLFF or COLMAP); 'example': the built-in one",
    )
    resolution: int = integer(
        512,
        32,
        1024,
        "longer side of the views the field is fitted at; the latent is 1/8 of it. 512 (a "
        "64x64 latent) is what SD 1.5's UNet was trained on and ED-NeRF edits at; smaller "
        "latents are off the UNet's training distribution (256 is the CPU-sized value)",
        unit="px",
        step=8,
        cpu=256,
    )
    steps: int = integer(3000, 10, 30000, "fitting iterations", step=10, cpu=500)
    grid: int = integer(128, 16, 320, "final TensoRF grid size per axis (coarse to fine)", step=8)
    samples: int = integer(96, 16, 512, "samples per ray across the box", step=8, cpu=64)
    batch_rays: int = integer(
        4096, 256, 65536, "RGB rays per step", label="rays per step", cpu=1024
    )
    background: str = choice("white", ("white", "black"), "what RGBA images are laid on")
    space: str = choice(
        "auto",
        ("auto", "box", "ndc", "contract"),
        "how rays are sampled: a box (object-centric), NDC (forward-facing) or mip-NeRF 360's "
        "contraction (unbounded 360); auto chooses from the poses",
        label="ray space",
        labels=(
            "auto (from the poses)",
            "box (object-centric)",
            "NDC (forward-facing)",
            "contraction (unbounded 360)",
        ),
    )
    preview_every: int = integer(200, 10, 10000, "a preview render every N steps")
    seed: int = seed()

    def check(self) -> None:
        self.scene = _path(self.scene, "scene")
        if self.resolution % 8:
            raise InputError(f"resolution is {self.resolution}; it must be a multiple of 8.")


@dataclass
class EditRequest(Request):
    """Edit a fitted scene file toward `target` with Delta Denoising Score (or SDS)."""

    task: ClassVar[str] = "edit"

    scene: str | None = value(None, "a fitted scene file (.nerf)", required=True)
    source: str = text("", "what the scene shows now", label="source prompt", max_length=300)
    target: str = text("", "what it should show", label="target prompt", max_length=300)
    mode: str = choice(
        "dds",
        MODES,
        "DDS (ED-NeRF) or SDS for comparison",
        labels=("Delta Denoising Score", "Score Distillation Sampling"),
    )
    steps: int = integer(300, 1, 5000, "edit iterations (one training view each)", cpu=30)
    guidance_scale: float = number(
        7.5,
        1.0,
        100.0,
        "classifier-free guidance (DDS and the DDS notebook's SDS: 7.5; DreamFusion's and "
        "threestudio's SDS: 100)",
        step=0.5,
    )
    weighting: str = choice(
        "1",
        WEIGHTINGS,
        "w(t), the weight of the guidance gradient at timestep t",
        labels=("w(t) = 1 (DDS notebook)", "w(t) = 1 - alpha_bar_t (DreamFusion SDS)"),
    )
    lr: float = number(5e-3, 1e-5, 0.1, "learning rate of the field's grids", widget="number")
    t_min: int = integer(50, 1, 998, "smallest timestep drawn")
    t_max: int = integer(950, 2, 999, "timesteps are drawn from [t_min, t_max)")
    switch_every: int = integer(1, 1, 100, "steps on one view before the next")
    frames: int = integer(
        24, 4, 240, "orbit video frames (original and edited side by side)", cpu=12
    )
    metric_model: str = choice(
        "clip",
        METRIC_MODELS,
        "the CLIP the edit metrics are measured with: ViT-B/32, or ViT-L/14 as InstructPix2Pix "
        "and the NeRF-editing papers after it report (an optional download)",
        label="metric CLIP",
        labels=("CLIP ViT-B/32 (nerf.clip)", "CLIP ViT-L/14 (nerf.clip_l14, as peers report)"),
    )
    preview_every: int = integer(50, 1, 5000, "a preview render every N steps")
    seed: int = seed()

    def check(self) -> None:
        self.scene = _path(self.scene, "scene file")
        for role in ("source", "target"):
            if not getattr(self, role).strip():
                raise InputError(f"Write a {role} prompt: it is empty.")
        if self.source.strip() == self.target.strip():
            raise InputError(
                "The source and target prompts are the same: the edit would do nothing."
            )
        if self.t_min >= self.t_max:
            raise InputError(f"t_min ({self.t_min}) must be below t_max ({self.t_max}).")


@dataclass
class RenderRequest(Request):
    """An orbit video and a still of a scene file, beside a second one to compare."""

    task: ClassVar[str] = "render"

    scene: str | None = value(None, "a scene file (.nerf)", required=True)
    compare: str | None = value(None, "a second scene file shown beside the first (optional)")
    decode: str = choice(
        "latent",
        ("latent", "rgb"),
        "what is shown",
        labels=("VAE-decoded latent (shows edits)", "RGB head: the fitted scene (no model)"),
    )
    frames: int = integer(48, 4, 360, "orbit video frames", cpu=24)
    fps: int = integer(24, 1, 60, "video frame rate")
    azimuth: float = number(30.0, 0.0, 360.0, "the still's camera: azimuth", unit="°")
    elevation: float = number(25.0, -80.0, 80.0, "the still's camera: elevation", unit="°")
    distance: float = number(
        1.0, 0.5, 2.0, "the still's camera distance, times the training cameras'", step=0.05
    )

    def check(self) -> None:
        self.scene = _path(self.scene, "scene file")
        if isinstance(self.compare, str) and not self.compare.strip():
            self.compare = None
        if self.compare is not None:
            self.compare = _path(self.compare, "scene file to compare")
