"""What a subject-video request holds, and the one place it is checked."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..base import Request
from ..boxes import label_and_coords
from ..errors import InputError
from ..fields import choice, flag, integer, number, seed, text, value
from ..phrases import clean_phrase, contains_words

FRAMES_RANGE = (8, 32)
SIZE_RANGE = (256, 512)
STEPS_RANGE = (1, 100)
MAX_KEYFRAMES = 32
IP_ADAPTERS = ("plain", "plus")
IP_ADAPTER_FILES = {
    "plain": "ip-adapter_sd15.safetensors",
    "plus": "ip-adapter-plus_sd15.safetensors",
}
IN_MEMORY_IMAGE = "<in-memory image>"
CONTROL_PRESETS = ("ours", "peekaboo", "trailblazer", "direct-a-video", "none")
CONTROL_LABELS = (
    "ours (hard reference mask early, subject + end-of-text tokens)",
    "Peekaboo (fg/bg masked attention, first 2 of 50 steps)",
    "TrailBlazer (x0.001 outside, Gaussian boost, first 5 of 50 steps)",
    "Direct-a-Video (+25(1 - area) inside early, -inf outside always)",
    "none (plain AnimateDiff + IP-Adapter)",
)


@dataclass
class Keyframe:
    """Where the subject's box is at one frame: (x0, y0) top left and (x1, y1) bottom right,
    as fractions of the frame's width and height."""

    frame: int
    x0: float
    y0: float
    x1: float
    y1: float

    @classmethod
    def from_value(cls, value: Any) -> Keyframe:
        """A Keyframe, a mapping with frame/x0/y0/x1/y1, or (frame, x0, y0, x1, y1)."""
        if isinstance(value, Keyframe):
            return value
        frame, coords = label_and_coords(
            cls, value, "keyframe", "a frame number and a box x0, y0, x1, y1"
        )
        try:
            whole = float(frame)
        except (TypeError, ValueError) as err:
            raise InputError(
                f"A keyframe is a frame number and a box x0, y0, x1, y1; got {value!r}."
            ) from err
        if not whole.is_integer():
            raise InputError(f"A keyframe's frame must be a whole number; got {frame!r}.")
        return cls(int(whole), *coords)

    def box(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x1, self.y1)


@dataclass
class SubjectVideoRequest(Request):
    """A short video of the subject in `subject` moving along the keyframed box trajectory.

    Without a subject image it is box-guided text-to-video; without keyframes it is
    subject-driven text-to-video; with every control at 0 it is plain AnimateDiff (with
    IP-Adapter when a subject is given), identical to diffusers' pipeline for the same seed.
    """

    prompt: str = text(
        "",
        "what happens in the video; name the subject with the subject phrase",
        empty="The prompt is empty: describe the video, naming the subject.",
        cli=("--prompt",),
    )
    subject: Any = value(help="the subject photo: RGBA cut-out, or a photo with a mask")
    subject_mask: Any = value(help="optional mask of the subject in the photo (white = subject)")
    keyframes: list[Keyframe] = value([], "the subject's box at chosen frames, fractions")
    subject_phrase: str = text(
        "",
        "the words of the prompt that name the subject (needed with boxes)",
        max_length=200,
    )
    negative_prompt: str = text("", "what to keep out of the video")
    frames: int = integer(16, *FRAMES_RANGE, "frames of video; AnimateDiff is trained on 16", cpu=8)
    width: int = integer(512, *SIZE_RANGE, "a multiple of 8", unit="px", step=64, cpu=256)
    height: int = integer(512, *SIZE_RANGE, "a multiple of 8", unit="px", step=64, cpu=256)
    steps: int = integer(25, *STEPS_RANGE, "denoising steps", cpu=6)
    guidance_scale: float = number(
        7.5, 0.0, 20.0, "classifier-free guidance", label="guidance scale (CFG)", step=0.5
    )
    seed: int = seed()
    fps: int = integer(8, 1, 30, "frames per second of the mp4", label="frames per second")
    control: str = choice(
        "ours",
        CONTROL_PRESETS,
        "how the box steers attention: ours, or a zero-shot peer's control rebuilt on the same "
        "processors; the settings below belong to 'ours'",
        label="box control",
        labels=CONTROL_LABELS,
    )
    ip_adapter: str = choice(
        "plain",
        IP_ADAPTERS,
        "which SD-1.5 IP-Adapter encodes the subject",
        label="IP-Adapter",
        labels=("IP-Adapter", "IP-Adapter Plus (finer detail)"),
    )
    ip_scale: float = number(
        0.6, 0.0, 1.5, "weight of the subject image's cross-attention", label="IP-Adapter scale"
    )
    reference_strength: float = number(
        1.0,
        0.0,
        3.0,
        "masked reference attention: weight of the subject's keys in every frame; 0: off",
        step=0.05,
    )
    reference_lambda_early: float = number(
        0.0,
        0.0,
        1.0,
        "lambda_M in the early steps: the reference's weight outside the box (0: a hard mask, "
        "the reference only inside)",
        label="reference lambda_M (early)",
        step=0.05,
    )
    reference_soften: float = number(
        0.5, 0.0, 1.0, "step fraction from which the late lambda_M replaces the early one"
    )
    reference_lambda: float = number(
        0.25,
        0.0,
        1.0,
        "lambda_M in the later steps; 0.75 is DreamVideo-2's setting, tuned for its model "
        "trained with the mask (1: no mask)",
        label="reference lambda_M (late)",
        step=0.05,
    )
    reference_start: float = number(0.0, 0.0, 1.0, "first step fraction with the reference")
    reference_end: float = number(1.0, 0.0, 1.0, "last step fraction with the reference")
    ip_mask_strength: float = number(
        1.0,
        0.0,
        1.0,
        "masked IP-Adapter: how much the image branch is removed outside the box; 0: off",
        label="IP-Adapter mask strength",
        step=0.05,
    )
    ip_mask_start: float = number(0.0, 0.0, 1.0, "first step fraction with the IP-Adapter mask")
    ip_mask_end: float = number(1.0, 0.0, 1.0, "last step fraction with the IP-Adapter mask")
    token_strength: float = number(
        4.0,
        0.0,
        30.0,
        "subject tokens' attention logits + s inside the box and - s outside (x e^s and "
        "/ e^s before renormalising; Direct-a-Video boosts by up to 25); 0: off",
        label="subject-token strength",
        step=0.5,
    )
    token_trailing: int = integer(
        15,
        0,
        75,
        "end-of-text tokens after the prompt steered with the subject's (TrailBlazer: 15); "
        "CLIP's end tokens carry the subject too",
        label="subject end-of-text tokens",
    )
    token_start: float = number(0.0, 0.0, 1.0, "first step fraction with the token control")
    token_end: float = number(0.2, 0.0, 1.0, "last step fraction with the token control")
    temporal_mask_end: float = number(
        0.0,
        0.0,
        1.0,
        "Peekaboo's fg/bg separation in the motion modules' attention for steps before this "
        "fraction; 0: the motion modules untouched",
        label="temporal mask until",
        step=0.02,
    )
    soft_edge: float = number(
        0.0, 0.0, 0.5, "feather the box masks by this fraction of the box size", step=0.05
    )
    remove_background: bool = flag(
        False,
        "cut the subject out with CLIPSeg (finding the subject phrase) when the photo has no "
        "alpha channel and no mask is given",
    )
    metrics: bool = flag(True, "measure CLIP-T/I, DINO-I, temporal consistency, box IoU")
    cpu_offload: bool = flag(
        False, "model CPU offload: slower, fits 12-16 GB GPUs", label="CPU offload"
    )
    low_memory: bool = flag(
        False,
        "VAE slicing, memory-efficient attention and model CPU offload (sequential below 8 GB): "
        "slower, for 8-12 GB GPUs; on for every run when the studio runs with --low-memory",
        label="low memory",
        cli=None,  # the studio's --low-memory (`zsstudio --low-memory video ...`)
    )

    def __post_init__(self) -> None:
        if self.keyframes is None:
            self.keyframes = []
        if not isinstance(self.keyframes, (list, tuple)):
            raise InputError("`keyframes` must be a list of (frame, x0, y0, x1, y1).")
        self.keyframes = [Keyframe.from_value(k) for k in self.keyframes]
        for name in ("subject", "subject_mask"):
            source = getattr(self, name)
            if isinstance(source, str) and not source.strip():
                setattr(self, name, None)

    def to_params(self) -> dict[str, Any]:
        params = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("subject", "subject_mask"):
            source = params[name]
            if source is not None:
                params[name] = str(source) if isinstance(source, (str, Path)) else IN_MEMORY_IMAGE
        params["keyframes"] = [list((k.frame, *k.box())) for k in self.keyframes]
        return params

    @property
    def phrase(self) -> str:
        return clean_phrase(self.subject_phrase)

    def check(self) -> None:
        for name in ("width", "height"):
            size = getattr(self, name)
            if size % 8:
                raise InputError(
                    f"{name.capitalize()} {size} is not a multiple of 8 (the VAE downsamples by "
                    f"8); use {size - size % 8} or {size - size % 8 + 8}."
                )
        for name in ("subject", "subject_mask"):
            if getattr(self, name) == IN_MEMORY_IMAGE:
                raise InputError(f"This recipe was made from an in-memory {name}; pass a file.")
        if self.subject_mask is not None and self.subject is None:
            raise InputError("A subject mask was given without a subject image.")
        if self.remove_background and self.subject is not None and not self.phrase:
            raise InputError(
                "Background removal looks for the subject phrase: give one (words of the "
                "prompt naming the subject)."
            )
        if self.reference_lambda_early > self.reference_lambda:
            raise InputError(
                f"The early reference lambda_M ({self.reference_lambda_early:g}) is above the "
                f"late one ({self.reference_lambda:g}); the mask softens later, not earlier."
            )
        for control in ("reference", "ip_mask", "token"):
            start, end = getattr(self, f"{control}_start"), getattr(self, f"{control}_end")
            if start > end:
                raise InputError(
                    f"The {control.replace('_', ' ')} step range starts at {start:g} after it "
                    f"ends at {end:g}; give start <= end."
                )
        if self.phrase and not contains_words(self.prompt, self.phrase):
            raise InputError(
                f"The subject phrase {self.phrase!r} is not in the prompt {self.prompt!r}; use "
                "words that appear in the prompt."
            )
        self._check_keyframes()

    def _check_keyframes(self) -> None:
        if len(self.keyframes) > MAX_KEYFRAMES:
            raise InputError(
                f"{len(self.keyframes)} keyframes given; at most {MAX_KEYFRAMES} are supported."
            )
        if self.keyframes and not self.phrase:
            raise InputError(
                "Boxes need a subject phrase: the words of the prompt that name the subject "
                "(e.g. 'a dog'), so its tokens can be guided and detected."
            )
        seen: set[int] = set()
        for key in self.keyframes:
            name = f"The box at frame {key.frame}"
            if not 0 <= key.frame < self.frames:
                raise InputError(
                    f"Keyframe {key.frame} is outside the video's frames 0 to {self.frames - 1}."
                )
            if key.frame in seen:
                raise InputError(f"Frame {key.frame} has two boxes; give one box per keyframe.")
            seen.add(key.frame)
            if key.x0 >= key.x1 or key.y0 >= key.y1:
                raise InputError(
                    f"{name} {_fmt(key)} is inverted or has zero area; give x0 < x1 and y0 < y1 "
                    "(top-left, then bottom-right)."
                )
            x0, y0, x1, y1 = _clipped(key)
            if x0 >= x1 or y0 >= y1:
                raise InputError(
                    f"{name} {_fmt(key)} lies wholly outside the frame; coordinates are "
                    "fractions from 0 to 1."
                )

    def clipped_keyframes(self) -> tuple[list[Keyframe], list[str]]:
        """The keyframes with their boxes clipped to the frame, and a note for each one that
        reached outside it (a path may leave the frame; the subject is steered to the part
        of its box that is in view)."""
        kept, notes = [], []
        for key in self.keyframes:
            box = _clipped(key)
            if box != key.box():
                notes.append(
                    f"The box at frame {key.frame} {_fmt(key)} reaches outside the frame; "
                    f"clipped to ({', '.join(f'{c:g}' for c in box)})."
                )
            kept.append(Keyframe(key.frame, *box))
        return kept, notes

    def step_of(self, fraction: float) -> int:
        """The first step at or after `fraction` of the steps."""
        return math.ceil(fraction * self.steps - 1e-9)

    def step_range(self, control: str) -> tuple[int, int]:
        """[first, last) denoising steps where `control` acts, from its fractions."""
        start = getattr(self, f"{control}_start")
        end = getattr(self, f"{control}_end")
        return math.floor(start * self.steps + 1e-9), math.ceil(end * self.steps - 1e-9)


def _clipped(key: Keyframe) -> tuple[float, float, float, float]:
    return tuple(min(max(c, 0.0), 1.0) for c in key.box())


def _fmt(key: Keyframe) -> str:
    return "(" + ", ".join(f"{c:g}" for c in key.box()) + ")"
