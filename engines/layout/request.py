"""What a layout-to-image request holds, and the one place it is checked."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from ..base import Request
from ..errors import InputError

BACKBONES = ("sd15", "sd21base")
BOX_UNITS = ("pixels", "normalized")
MAX_BOXES = 8
MIN_BOX_PX = 8
SIZE_RANGE = (64, 2048)
STEPS_RANGE = (1, 150)
GUIDANCE_SCALE_RANGE = (0.0, 30.0)
STRENGTH_RANGE = (0.0, 500.0)
ITERATIONS_RANGE = (1, 10)

_EDGE_PUNCTUATION = " \t\n.,;:!?\"'()[]{}"


def clean_phrase(phrase: str) -> str:
    """A box label as typed, without surrounding spaces or punctuation ("a cat." -> "a cat")."""
    return phrase.strip(_EDGE_PUNCTUATION)


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", text.lower())


def _contains_words(prompt_words: list[str], phrase_words: list[str]) -> bool:
    n = len(phrase_words)
    return any(prompt_words[i : i + n] == phrase_words for i in range(len(prompt_words) - n + 1))


@dataclass
class PhraseBox:
    """A phrase of the prompt and the box it should fill: (x0, y0) top left, (x1, y1) bottom
    right, in pixels or as fractions of the image, as the request's `box_units` says."""

    phrase: str
    x0: float
    y0: float
    x1: float
    y1: float

    @classmethod
    def from_value(cls, value: Any) -> PhraseBox:
        """Accept a PhraseBox, a mapping with phrase/x0/y0/x1/y1, or (phrase, x0, y0, x1, y1)."""
        if isinstance(value, PhraseBox):
            return value
        try:
            if isinstance(value, Mapping):
                names = [f.name for f in fields(cls)]
                unknown = set(value) - set(names)
                if unknown:
                    raise InputError(f"Unknown box keys {sorted(unknown)}; a box has {names}.")
                phrase, x0, y0, x1, y1 = (value[name] for name in names)
            elif isinstance(value, Sequence) and not isinstance(value, str):
                phrase, x0, y0, x1, y1 = value
            else:
                raise TypeError
            coords = [float(c) for c in (x0, y0, x1, y1)]
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(
                f"A box is a phrase and four numbers x0, y0, x1, y1; got {value!r}."
            ) from err
        if not all(math.isfinite(c) for c in coords):
            raise InputError(f"Box coordinates must be finite numbers; got {value!r}.")
        return cls(str(phrase), *coords)

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    def coords(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x1, self.y1)

    def scaled(self, sx: float, sy: float) -> PhraseBox:
        return PhraseBox(self.phrase, self.x0 * sx, self.y0 * sy, self.x1 * sx, self.y1 * sy)


@dataclass
class LayoutRequest(Request):
    """Text to image where each box's phrase is guided into its box (BACON-style).

    With no boxes (or strength 0, or no guided steps) it is plain Stable Diffusion text to
    image, identical to diffusers' StableDiffusionPipeline for the same seed.
    """

    prompt: str = ""
    boxes: list[PhraseBox] = field(default_factory=list)
    box_units: str = "pixels"
    negative_prompt: str = ""
    width: int = 512
    height: int = 512
    steps: int = 50
    guidance_scale: float = 7.5
    seed: int = 0
    strength: float = 30.0
    guided_fraction: float = 0.2
    iterations: int = 2
    loss_threshold: float = 0.2
    weight_inside: float = 1.0
    weight_outside: float = 1.0
    weight_boundary: float = 0.5
    self_attention: bool = True
    score: bool = True
    backbone: str = "sd15"

    def __post_init__(self) -> None:
        if self.boxes is None:
            self.boxes = []
        if not isinstance(self.boxes, (list, tuple)):
            raise InputError("`boxes` must be a list of boxes (phrase, x0, y0, x1, y1).")
        self.boxes = [PhraseBox.from_value(box) for box in self.boxes]

    @property
    def guided(self) -> bool:
        """Whether any latent optimisation runs (boxes, a strength and guided steps)."""
        return bool(self.boxes) and self.strength > 0 and self.guided_steps > 0

    @property
    def guided_steps(self) -> int:
        """How many of the first denoising steps are guided."""
        return min(self.steps, math.ceil(self.guided_fraction * self.steps - 1e-9))

    def pixel_boxes(self) -> list[PhraseBox]:
        """The boxes in pixels of the output image, phrases cleaned."""
        sx, sy = (self.width, self.height) if self.box_units == "normalized" else (1, 1)
        return [
            PhraseBox(clean_phrase(b.phrase), b.x0 * sx, b.y0 * sy, b.x1 * sx, b.y1 * sy)
            for b in self.boxes
        ]

    def validate(self) -> None:
        if not isinstance(self.prompt, str) or not self.prompt.strip():
            raise InputError("The prompt is empty: describe the image, naming each boxed object.")
        self._check_integer("width", *SIZE_RANGE)
        self._check_integer("height", *SIZE_RANGE)
        for name in ("width", "height"):
            if getattr(self, name) % 8:
                value = getattr(self, name)
                raise InputError(
                    f"{name.capitalize()} {value} is not a multiple of 8 (the VAE downsamples "
                    f"by 8); use {value - value % 8} or {value - value % 8 + 8}."
                )
        self._check_integer("steps", *STEPS_RANGE)
        self._check_number("guidance_scale", *GUIDANCE_SCALE_RANGE)
        self._check_integer("seed", 0, 2**63 - 1)
        self._check_number("strength", *STRENGTH_RANGE)
        self._check_number("guided_fraction", 0.0, 1.0)
        self._check_integer("iterations", *ITERATIONS_RANGE)
        self._check_number("loss_threshold", 0.0, 1.0)
        for name in ("weight_inside", "weight_outside", "weight_boundary"):
            self._check_number(name, 0.0, 100.0)
        if self.backbone not in BACKBONES:
            raise InputError(
                f"Unknown backbone {self.backbone!r}; choose {' or '.join(BACKBONES)}."
            )
        if self.box_units not in BOX_UNITS:
            raise InputError(f"box_units must be {' or '.join(BOX_UNITS)}, not {self.box_units!r}.")
        self._check_boxes()

    def _check_boxes(self) -> None:
        if len(self.boxes) > MAX_BOXES:
            raise InputError(
                f"{len(self.boxes)} boxes given; at most {MAX_BOXES} are supported. Merge or "
                "remove some."
            )
        if (
            self.boxes
            and self.guided
            and not (self.weight_inside + self.weight_outside + self.weight_boundary > 0)
        ):
            raise InputError("All loss weights are 0: give at least one a positive weight.")
        prompt_words = _words(self.prompt)
        for index, box in enumerate(self.pixel_boxes(), start=1):
            name = f"Box {index} ({box.phrase or 'no label'})"
            if not box.phrase:
                raise InputError(f"Box {index} has no phrase: label it with words of the prompt.")
            if not _contains_words(prompt_words, _words(box.phrase)):
                raise InputError(
                    f"The phrase {box.phrase!r} of box {index} is not in the prompt "
                    f"{self.prompt!r}; label the box with words that appear in the prompt."
                )
            if box.x0 >= box.x1 or box.y0 >= box.y1:
                raise InputError(
                    f"{name} has x0 >= x1 or y0 >= y1; give top-left then bottom-right."
                )
            if box.x0 < 0 or box.y0 < 0 or box.x1 > self.width or box.y1 > self.height:
                raise InputError(
                    f"{name} {_fmt(box)} reaches outside the {self.width}x{self.height} image; "
                    "keep every box inside it."
                )
            if box.width < MIN_BOX_PX or box.height < MIN_BOX_PX:
                raise InputError(
                    f"{name} is {box.width:.0f}x{box.height:.0f} px; each side must be at least "
                    f"{MIN_BOX_PX} px."
                )

    def _check_integer(self, name: str, low: int, high: int) -> None:
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{name} must be a whole number, got {value!r}.")
        if not low <= value <= high:
            raise InputError(f"{name} is {value}; it must be between {low} and {high}.")

    def _check_number(self, name: str, low: float, high: float) -> None:
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{name} must be a number, got {value!r}.")
        if not (math.isfinite(value) and low <= value <= high):
            raise InputError(f"{name} is {value}; it must be between {low} and {high}.")


def _fmt(box: PhraseBox) -> str:
    return "(" + ", ".join(f"{c:g}" for c in box.coords()) + ")"
