"""`zsstudio video`: subject video from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..commands import add_request_arguments, request_from_args, run_and_save
from ..errors import InputError
from .requests import MAX_KEYFRAMES, Keyframe, SubjectVideoRequest


def parse_keyframe(text: str) -> Keyframe:
    """'15:0.6,0.4,0.95,0.9' -> Keyframe(15, 0.6, 0.4, 0.95, 0.9)."""
    frame, sep, numbers = text.partition(":")
    parts = numbers.split(",")
    if not sep or len(parts) != 4:
        raise InputError(
            f"--box {text!r}: write it as 'FRAME:X0,Y0,X1,Y1', e.g. '0:0.05,0.4,0.35,0.9'."
        )
    try:
        values = (int(frame), *(float(p) for p in parts))
    except ValueError as err:
        raise InputError(
            f"--box {text!r}: the frame must be a whole number and the four coordinates numbers."
        ) from err
    return Keyframe.from_value(values)


def request_from(args: argparse.Namespace) -> SubjectVideoRequest:
    return request_from_args(
        SubjectVideoRequest,
        args,
        subject=str(args.subject) if args.subject else None,
        subject_mask=str(args.subject_mask) if args.subject_mask else None,
        keyframes=[parse_keyframe(text) for text in args.box],
    )


def add_commands(subparsers, make_studio) -> None:
    parser = subparsers.add_parser(
        "video",
        help="subject video: a subject photo moved along a box trajectory (AnimateDiff)",
        description="Zero-shot DreamVideo-2-style subject video on AnimateDiff + IP-Adapter. "
        "Writes video.mp4, video-boxes.mp4 (with boxes), frames.png, metrics.json and "
        "recipe.json.",
    )
    parser.add_argument("--subject", type=Path, help="the subject photo (RGBA cut-out or photo)")
    parser.add_argument("--subject-mask", type=Path, help="mask of the subject (white = subject)")
    parser.add_argument(
        "--box",
        action="append",
        default=[],
        metavar="FRAME:X0,Y0,X1,Y1",
        help=f"the subject's box at a frame, fractions of the frame (repeatable, up to "
        f"{MAX_KEYFRAMES}); linear in between, held before the first and after the last",
    )
    add_request_arguments(parser, SubjectVideoRequest)
    parser.add_argument("-o", "--output", type=Path, default=Path("outputs/video"))
    parser.set_defaults(
        handler=lambda args: run_and_save(make_studio, args, "video", request_from(args))
    )
