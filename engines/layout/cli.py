"""`zsstudio layout`: layout to image from the command line."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ..errors import InputError
from .request import BACKBONES, LayoutRequest, PhraseBox

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(LayoutRequest)}


def parse_box(text: str) -> PhraseBox:
    """'a cat:0.1,0.5,0.45,0.9' -> PhraseBox (the phrase may itself contain colons)."""
    phrase, sep, numbers = text.rpartition(":")
    parts = numbers.split(",")
    if not sep or not phrase.strip() or len(parts) != 4:
        raise InputError(
            f"--box {text!r}: write it as 'PHRASE:X0,Y0,X1,Y1', e.g. 'a cat:0.1,0.5,0.45,0.9'."
        )
    try:
        return PhraseBox(phrase.strip(), *(float(p) for p in parts))
    except ValueError as err:
        raise InputError(f"--box {text!r}: the four coordinates must be numbers.") from err


def request_from_args(args: argparse.Namespace) -> LayoutRequest:
    return LayoutRequest(
        prompt=args.prompt,
        boxes=[parse_box(text) for text in args.box],
        box_units="pixels" if args.pixels else "normalized",
        negative_prompt=args.negative_prompt,
        width=args.width,
        height=args.height,
        steps=args.steps,
        guidance_scale=args.guidance_scale,
        seed=args.seed,
        strength=args.strength,
        guided_fraction=args.guided_fraction,
        iterations=args.iterations,
        loss_threshold=args.loss_threshold,
        weight_inside=args.weight_inside,
        weight_outside=args.weight_outside,
        weight_boundary=args.weight_boundary,
        self_attention=not args.no_self_attention,
        score=not args.no_score,
        backbone=args.backbone,
    )


def add_commands(subparsers, make_studio) -> None:
    parser = subparsers.add_parser(
        "layout",
        help="layout to image: each --box's phrase is guided into its box",
        description="BACON-style layout-to-image on Stable Diffusion. Writes image.png, "
        "overlay.png, one heatmap per box, scores.json and recipe.json.",
    )
    parser.add_argument("--prompt", required=True, help="the text; every box phrase must be in it")
    parser.add_argument(
        "--box",
        action="append",
        default=[],
        metavar="PHRASE:X0,Y0,X1,Y1",
        help="a phrase of the prompt and its box, fractions of the image (repeatable, up to 8)",
    )
    parser.add_argument("--pixels", action="store_true", help="--box coordinates are pixels")
    parser.add_argument("--negative-prompt", default=_DEFAULTS["negative_prompt"])
    parser.add_argument("--width", type=int, default=_DEFAULTS["width"])
    parser.add_argument("--height", type=int, default=_DEFAULTS["height"])
    parser.add_argument("--steps", type=int, default=_DEFAULTS["steps"])
    parser.add_argument("--guidance-scale", type=float, default=_DEFAULTS["guidance_scale"])
    parser.add_argument("--seed", type=int, default=_DEFAULTS["seed"])
    parser.add_argument(
        "--strength", type=float, default=_DEFAULTS["strength"], help="latent step size; 0: off"
    )
    parser.add_argument(
        "--guided-fraction",
        type=float,
        default=_DEFAULTS["guided_fraction"],
        help="fraction of the first denoising steps that are guided",
    )
    parser.add_argument(
        "--iterations", type=int, default=_DEFAULTS["iterations"], help="updates per guided step"
    )
    parser.add_argument("--loss-threshold", type=float, default=_DEFAULTS["loss_threshold"])
    parser.add_argument("--weight-inside", type=float, default=_DEFAULTS["weight_inside"])
    parser.add_argument("--weight-outside", type=float, default=_DEFAULTS["weight_outside"])
    parser.add_argument("--weight-boundary", type=float, default=_DEFAULTS["weight_boundary"])
    parser.add_argument(
        "--no-self-attention", action="store_true", help="use raw cross-attention maps"
    )
    parser.add_argument("--no-score", action="store_true", help="skip the detector's layout score")
    parser.add_argument("--backbone", default=_DEFAULTS["backbone"], choices=BACKBONES)
    parser.add_argument("-o", "--output", type=Path, default=Path("outputs/layout"))

    def run(args: argparse.Namespace) -> int:
        from ..cli import progress_bar, save_and_report

        request = request_from_args(args)
        request.validate()
        engine = make_studio(args).engine("layout")
        with progress_bar("layout") as progress:
            result = engine.run(request, progress)
        return save_and_report(result, args.output)

    parser.set_defaults(handler=run)
