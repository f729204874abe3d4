"""`zsstudio layout`: layout to image from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..commands import add_request_arguments, request_from_args, run_and_save
from ..errors import InputError
from .requests import MAX_BOXES, LayoutRequest, PhraseBox


def parse_box(text: str) -> PhraseBox:
    """'a cat:0.1,0.5,0.45,0.9' -> PhraseBox (the phrase may itself contain colons)."""
    phrase, sep, numbers = text.rpartition(":")
    parts = numbers.split(",")
    if not sep or not phrase.strip() or len(parts) != 4:
        raise InputError(
            f"--box {text!r}: write it as 'PHRASE:X0,Y0,X1,Y1', e.g. 'a cat:0.1,0.5,0.45,0.9'."
        )
    try:
        return PhraseBox.from_value((phrase.strip(), *(float(p) for p in parts)))
    except ValueError as err:
        raise InputError(f"--box {text!r}: the four coordinates must be numbers.") from err


def request_from(args: argparse.Namespace) -> LayoutRequest:
    return request_from_args(
        LayoutRequest,
        args,
        boxes=[parse_box(text) for text in args.box],
        box_units="pixels" if args.pixels else "normalized",
    )


def add_commands(subparsers, make_studio) -> None:
    parser = subparsers.add_parser(
        "layout",
        help="layout to image: each --box's phrase is guided into its box",
        description="BACON-style layout-to-image on Stable Diffusion. Writes image.png, "
        "overlay.png, one heatmap per box, scores.json, metrics.json and recipe.json.",
    )
    parser.add_argument(
        "--box",
        action="append",
        default=[],
        metavar="PHRASE:X0,Y0,X1,Y1",
        help=f"a phrase of the prompt and its box, fractions of the image (repeatable, up to "
        f"{MAX_BOXES})",
    )
    parser.add_argument("--pixels", action="store_true", help="--box coordinates are pixels")
    add_request_arguments(parser, LayoutRequest)
    parser.add_argument("-o", "--output", type=Path, default=Path("outputs/layout"))
    parser.set_defaults(
        handler=lambda args: run_and_save(make_studio, args, "layout", request_from(args))
    )
