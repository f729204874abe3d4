"""`zsstudio compress`, `zsstudio decompress` and `zsstudio restore-tokens`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from ..base import Request, Result
from ..commands import add_request_arguments, progress_bar, request_from_args
from ..outputs import png_bytes, write_bytes
from .requests import CompressRequest, DecompressRequest, RestoreRequest


def add_commands(subparsers, make_studio: Callable) -> None:
    compress = subparsers.add_parser(
        "compress", help="compress an image into a .zsc file (VQGAN tokens, < 0.05 bpp)"
    )
    compress.add_argument("image", type=Path, help="the image (PNG, JPEG, WebP ...)")
    compress.add_argument(
        "-o",
        "--output",
        type=Path,
        help="the .zsc file (default: IMAGE.zsc); its recipe goes beside it, with the image "
        "in <name>.inputs/",
    )
    add_request_arguments(compress, CompressRequest)
    compress.add_argument("--decoded", type=Path, help="also write the decoded image (PNG)")
    compress.set_defaults(handler=lambda args: _compress(args, make_studio))

    decompress = subparsers.add_parser("decompress", help="decode a .zsc file into a PNG")
    decompress.add_argument("file", type=Path, help="the .zsc file")
    decompress.add_argument("-o", "--output", type=Path, help="the PNG (default: FILE.png)")
    add_request_arguments(decompress, DecompressRequest)
    decompress.set_defaults(handler=lambda args: _decompress(args, make_studio))

    restore = subparsers.add_parser(
        "restore-tokens", help="lose a fraction of a .zsc file's tokens and restore them"
    )
    restore.add_argument("file", type=Path, help="the .zsc file")
    add_request_arguments(restore, RestoreRequest)
    restore.add_argument("--original", type=Path, help="the original image, to measure against")
    restore.add_argument("-o", "--output", type=Path, default=Path("outputs"), help="output folder")
    restore.set_defaults(handler=lambda args: _restore(args, make_studio))


def _run(args: argparse.Namespace, make_studio, request: Request, description: str) -> Result:
    """Run a request validated from the arguments (before any model loads)."""
    with progress_bar(description) as progress:
        return make_studio(args).engine("compression").run(request, progress)


def _compress(args: argparse.Namespace, make_studio) -> int:
    result = _run(args, make_studio, request_from_args(CompressRequest, args), "compress")
    output = args.output or args.image.with_suffix(".zsc")
    write_bytes(output, result.zsc)
    if args.decoded:
        write_bytes(args.decoded, png_bytes(result.decoded))
    for path in result.recipe.save_beside(output.with_suffix(".recipe.json")):
        print(path, file=sys.stderr)
    m = result.metrics
    print(
        f"{output}: {m['file_bytes']} bytes, {m['bpp']:.4f} bpp, PSNR {m['psnr_db']:.2f} dB",
        file=sys.stderr,
    )
    print(json.dumps({"metrics": m, "rates": result.rates}, indent=2, default=str))
    return 0


def _decompress(args: argparse.Namespace, make_studio) -> int:
    result = _run(args, make_studio, request_from_args(DecompressRequest, args), "decompress")
    output = args.output or args.file.with_suffix(".png")
    write_bytes(output, png_bytes(result.image))
    print(output, file=sys.stderr)
    print(json.dumps(result.metrics, indent=2, default=str))
    return 0


def _restore(args: argparse.Namespace, make_studio) -> int:
    result = _run(args, make_studio, request_from_args(RestoreRequest, args), "restore")
    for path in result.save(args.output):
        print(path, file=sys.stderr)
    print(json.dumps(result.metrics, indent=2, default=str))
    return 0
