"""The box controls by name: ours, and the zero-shot peers' as their papers (and TrailBlazer's
released configs) describe them, rebuilt on our processors (`control.py`) with their published
strengths and step windows. docs/video.md's "against the sources" table gives each number's
source.

A peer's window is stated as "the first k of its K steps"; on our schedule of N steps it
covers the same share of the denoising, rounded up to whole steps and at least one:
ceil(k * N / K). Every preset keeps our masked IP-Adapter when a subject is given: no peer
takes a subject image, and unmasked the IP-Adapter paints the subject over the whole frame."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .control import SEPARATE, ControlSettings
from .requests import CONTROL_PRESETS

PRESETS = CONTROL_PRESETS

PAPER_LAMBDA = 0.75  # DreamVideo-2's lambda_M, tuned for a model trained with the mask

# Peekaboo: -10000 masks between fg and bg in spatial self-, cross- and temporal attention
# for the first 2 of 50 steps (TrailBlazer's reproduction config: frozen_steps 2).
PEEKABOO_STEPS = (2, 50)
# TrailBlazer's main configs: num_dd_spatial_steps = num_dd_temporal_steps = 5 (of the
# ZeroScope pipeline's 50), spatial_weaken_scale 0.001, spatial_strengthen_scale 0.15,
# trailing_length 15.
TRAILBLAZER_STEPS = (5, 50)
TRAILBLAZER_WEAKEN = 0.001
TRAILBLAZER_STRENGTHEN = 0.15
TRAILBLAZER_TRAILING = 15
# Direct-a-Video: +25(1 - box area) on the object tokens inside the box for t >= 0.95 T,
# -inf outside the box at every step, conditional half only.
DIRECT_A_VIDEO_BOOST = 25.0
DIRECT_A_VIDEO_STEPS = (5, 100)  # t >= 0.95 T: the first 5% of the denoising


def peer_steps(window: tuple[int, int], steps: int) -> tuple[int, int]:
    """[0, n): the first k of K steps as a share of our `steps`, rounded up, at least 1."""
    k, of = window
    return 0, min(steps, max(1, math.ceil(k * steps / of - 1e-9)))


@dataclass(frozen=True)
class PresetSettings:
    """A preset made concrete for one request: the processors' settings and how many
    end-of-text tokens after the prompt count as the subject's."""

    settings: ControlSettings
    trailing_tokens: int


def preset_settings(request, subject: bool, boxes: bool) -> PresetSettings:
    """The settings of `request.control` for a request with or without a subject and boxes."""
    steps = request.steps
    ip = {}
    if subject and boxes:
        ip = {"ip_mask_strength": request.ip_mask_strength, **_window(request, "ip_mask")}
    name = request.control
    if name == "none":
        return PresetSettings(ControlSettings(), 0)
    if name == "ours":
        return _ours(request, subject, boxes, ip)
    if not boxes:  # the peers only place a subject; without boxes they do nothing
        return PresetSettings(ControlSettings(), 0)
    if name == "peekaboo":
        window = peer_steps(PEEKABOO_STEPS, steps)
        settings = ControlSettings(
            **ip,
            partition=True,
            partition_steps=window,
            temporal_bias=SEPARATE,
            temporal_steps=window,
        )
        return PresetSettings(settings, 0)
    if name == "trailblazer":
        window = peer_steps(TRAILBLAZER_STEPS, steps)
        weaken = math.log(TRAILBLAZER_WEAKEN)
        settings = ControlSettings(
            **ip,
            token_inside=TRAILBLAZER_STRENGTHEN,
            token_inside_shape="gaussian",
            token_steps=window,
            token_outside=weaken,
            token_outside_steps=window,
            temporal_bias=weaken,
            temporal_steps=window,
        )
        return PresetSettings(settings, TRAILBLAZER_TRAILING)
    if name == "direct-a-video":
        settings = ControlSettings(
            **ip,
            token_inside=DIRECT_A_VIDEO_BOOST,
            token_inside_shape="area",
            token_steps=peer_steps(DIRECT_A_VIDEO_STEPS, steps),
            token_outside=SEPARATE,
            token_outside_steps=(0, steps),
        )
        return PresetSettings(settings, 0)
    raise ValueError(f"unknown control preset {name!r}")  # the request's choice refuses first


def _ours(request, subject: bool, boxes: bool, ip: dict) -> PresetSettings:
    token = {}
    if boxes:
        window = _window(request, "token")
        token = {
            "token_inside": request.token_strength,
            "token_steps": window["token_steps"],
            "token_outside": -request.token_strength,
            "token_outside_steps": window["token_steps"],
        }
        if request.temporal_mask_end > 0:
            token["temporal_bias"] = SEPARATE
            token["temporal_steps"] = (0, request.step_of(request.temporal_mask_end))
    reference = {}
    if subject:
        reference = {
            "reference_strength": request.reference_strength,
            "reference_lambda": request.reference_lambda,
            "reference_lambda_early": request.reference_lambda_early,
            "reference_soften_step": request.step_of(request.reference_soften),
            **_window(request, "reference"),
        }
    settings = ControlSettings(**reference, **ip, **token)
    return PresetSettings(settings, request.token_trailing if boxes else 0)


def _window(request, control: str) -> dict[str, tuple[int, int]]:
    return {f"{control}_steps": request.step_range(control)}


def trailing_tokens(tokenizer, prompt: str, preset: PresetSettings) -> tuple[int, ...]:
    """The positions of the first `preset.trailing_tokens` end-of-text tokens: the prompt's
    own end token and the padding after it (CLIP's tokenizer pads SD 1.5's prompts with the
    end token), within the text encoder's length."""
    if preset.trailing_tokens <= 0:
        return ()
    end = len(tokenizer(prompt, add_special_tokens=True).input_ids) - 1
    last = min(tokenizer.model_max_length, end + preset.trailing_tokens)
    return tuple(range(end, last))
