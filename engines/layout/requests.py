"""What a layout-to-image request holds, and the one place it is checked."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ..base import Request
from ..boxes import label_and_coords
from ..errors import InputError
from ..fields import choice, flag, integer, number, seed, text, value
from ..phrases import clean_phrase, contains_words
from ..phrases import words as words_of

BACKBONES = ("sd15", "sd21base")
BOX_UNITS = ("pixels", "normalized")
MAX_BOXES = 8
MIN_BOX_PX = 8
SIZE_RANGE = (64, 2048)
STEPS_RANGE = (1, 150)
GUIDANCE_SCALE_RANGE = (0.0, 30.0)
STRENGTH_RANGE = (0.0, 500.0)
ITERATIONS_RANGE = (1, 10)

PHRASE_BREAKS = (
    "and|or|with|of|on|onto|in|into|inside|at|by|to|next|near|beside|behind|over|under|"
    "above|below|beneath|between|from|for|against|around|while|where|that|which|"
    "is|are|it|its|their|his|her"
)
DETERMINERS = {"a", "an", "the", "this", "that", "some", "its", "their", "his", "her"}


def noun_phrases(prompt: str) -> list[str]:
    """The prompt's noun phrases, roughly: the runs of words between commas, prepositions and
    conjunctions, without leading articles and from the first -ing word on ("a red car and a
    dog sitting on a sofa" -> red car, dog, sofa). Good enough to offer as box labels."""
    phrases = []
    for chunk in re.split(rf"[,;:.!?]|\b(?:{PHRASE_BREAKS})\b", (prompt or "").lower()):
        words = words_of(chunk or "")
        while words and words[0] in DETERMINERS:
            words.pop(0)
        for index, word in enumerate(words[1:], start=1):
            if word.endswith("ing"):  # "dog sitting" -> "dog"
                words = words[:index]
                break
        if words:
            phrases.append(" ".join(words))
    return list(dict.fromkeys(phrases))


def suggested_labels(prompt: str, typed: str = "") -> list[str]:
    """Box labels to offer: the comma-separated phrases typed, else the prompt's noun phrases
    (whole: "red apple", not "red" and "apple")."""
    phrases = [clean_phrase(p) for p in (typed or "").split(",") if clean_phrase(p)]
    if phrases:
        return list(dict.fromkeys(phrases))
    return noun_phrases(prompt)


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
        phrase, coords = label_and_coords(
            cls, value, "box", "a phrase and four numbers x0, y0, x1, y1"
        )
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

    prompt: str = text(
        "",
        "the text; every box phrase must be in it",
        empty="The prompt is empty: describe the image, naming each boxed object.",
        cli=("--prompt",),
    )
    boxes: list[PhraseBox] = value([], "phrases of the prompt and their boxes")
    box_units: str = choice("pixels", BOX_UNITS, "what box coordinates are in", cli=None)
    negative_prompt: str = text("", "what to keep out of the image")
    width: int = integer(512, *SIZE_RANGE, "a multiple of 8", unit="px", step=64, cpu=256)
    height: int = integer(512, *SIZE_RANGE, "a multiple of 8", unit="px", step=64, cpu=256)
    steps: int = integer(50, *STEPS_RANGE, "denoising steps", cpu=20)
    guidance_scale: float = number(
        7.5,
        *GUIDANCE_SCALE_RANGE,
        "classifier-free guidance",
        label="guidance scale (CFG)",
        step=0.5,
    )
    seed: int = seed()
    strength: float = number(
        30.0,
        *STRENGTH_RANGE,
        "latent step size of the layout guidance; 0: off",
        label="guidance strength",
        step=1,
    )
    guided_fraction: float = number(
        0.2, 0.0, 1.0, "fraction of the first denoising steps that are guided", step=0.05
    )
    iterations: int = integer(2, *ITERATIONS_RANGE, "latent updates per guided step")
    loss_threshold: float = number(
        0.2, 0.0, 1.0, "a guided step stops updating below this loss", step=0.01
    )
    weight_inside: float = number(1.0, 0.0, 100.0, "weight of the inside term", step=0.1)
    weight_outside: float = number(1.0, 0.0, 100.0, "weight of the outside term", step=0.1)
    weight_boundary: float = number(0.5, 0.0, 100.0, "weight of the boundary term", step=0.1)
    self_attention: bool = flag(
        True, "aggregate cross-attention maps through self-attention (else raw maps)"
    )
    score: bool = flag(
        True, "score the layout with the detector (Grounding DINO)", label="layout score"
    )
    backbone: str = choice("sd15", BACKBONES, "the Stable Diffusion checkpoint")

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

    def check(self) -> None:
        for name in ("width", "height"):
            if getattr(self, name) % 8:
                value = getattr(self, name)
                raise InputError(
                    f"{name.capitalize()} {value} is not a multiple of 8 (the VAE downsamples "
                    f"by 8); use {value - value % 8} or {value - value % 8 + 8}."
                )
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
        for index, box in enumerate(self.pixel_boxes(), start=1):
            name = f"Box {index} ({box.phrase or 'no label'})"
            if not box.phrase:
                raise InputError(f"Box {index} has no phrase: label it with words of the prompt.")
            if not contains_words(self.prompt, box.phrase):
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


def _fmt(box: PhraseBox) -> str:
    return "(" + ", ".join(f"{c:g}" for c in box.coords()) + ")"
