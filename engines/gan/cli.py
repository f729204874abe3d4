"""`zsstudio gan-adapt` and `zsstudio gan-sample`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..base import metrics_json
from ..commands import add_request_arguments, progress_bar, request_from_args, run_and_save
from ..errors import InputError
from ..outputs import write_bytes
from .requests import AdaptRequest, SampleRequest


def add_commands(commands, make_studio) -> None:
    adapt = commands.add_parser(
        "gan-adapt",
        help="adapt a StyleGAN2 from a source to a target text (SVL or StyleGAN-NADA)",
        description="Writes the adapted generator ({'g_ema': ...}) to -o, and next to it "
        "<name>.png (before/after grid), <name>-losses.csv, <name>-metrics.json and "
        "<name>-recipe.json.",
    )
    add_request_arguments(adapt, AdaptRequest)
    adapt.add_argument(
        "-o", "--output", type=Path, default=Path("adapted.pt"), help="the generator file (.pt)"
    )
    adapt.set_defaults(handler=lambda args: _adapt(args, make_studio))

    sample = commands.add_parser("gan-sample", help="draw images from an adapted generator .pt")
    sample.add_argument("checkpoint", type=Path, help="an adapted generator file (.pt)")
    add_request_arguments(sample, SampleRequest)
    sample.add_argument("-o", "--output", type=Path, default=Path("samples"), help="folder")
    sample.set_defaults(handler=lambda args: _sample(args, make_studio))


def _adapt(args: argparse.Namespace, make_studio) -> int:
    output: Path = args.output
    if output.suffix.lower() == ".png":
        raise InputError(f"-o names the generator file (.pt); the grid goes beside it: {output}.")
    request = request_from_args(AdaptRequest, args)
    with progress_bar("gan-adapt") as progress:
        result = make_studio(args).engine("gan").run(request, progress)
    for path in save_beside(result, output):
        print(path)
    if result.cancelled:
        print(f"stopped after {result.iterations_done} iterations", file=sys.stderr)
    print(json.dumps(result.metrics, indent=2, default=str))
    return 0


def beside(output: Path, name: str) -> Path:
    """Where `-o x.pt` puts a file of the result's save layout: the generator at x.pt, the grid
    at x.png, anything else (losses.csv, metrics.json, recipe.json) at x-<name>."""
    from .results import GENERATOR_FILE, GRID_FILE

    if name == GENERATOR_FILE:
        return output
    if name == GRID_FILE:
        return output.with_suffix(".png")
    return output.with_name(f"{output.stem}-{name}")


def save_beside(result, output: Path) -> list[Path]:
    """The files every result saves (its outputs, metrics.json), named after `output`
    instead; the recipe with its input files beside it (x-inputs/)."""
    files = {**result.files(), "metrics.json": metrics_json(result.metrics).encode("utf-8")}
    written = [write_bytes(beside(output, name), data) for name, data in files.items()]
    return written + result.recipe.save_beside(beside(output, "recipe.json"))


def _sample(args: argparse.Namespace, make_studio) -> int:
    request = request_from_args(SampleRequest, args, checkpoint=str(args.checkpoint))
    return run_and_save(make_studio, args, "gan", request)
