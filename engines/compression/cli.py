"""`zsstudio compress`, `zsstudio decompress` and `zsstudio restore-tokens`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from ..cli import progress_bar
from .codec import CODERS
from .images import png_bytes
from .restoration import DEFAULT_STEPS


def add_commands(subparsers, make_studio: Callable) -> None:
    compress = subparsers.add_parser(
        "compress", help="compress an image into a .zsc file (VQGAN tokens, < 0.05 bpp)"
    )
    compress.add_argument("image", type=Path, help="the image (PNG, JPEG, WebP ...)")
    compress.add_argument("-o", "--output", type=Path, help="the .zsc file (default: IMAGE.zsc)")
    compress.add_argument(
        "--codebook", type=int, default=256, help="codebook size K: 16, 32, ..., 8192"
    )
    compress.add_argument(
        "--coder",
        choices=CODERS,
        default="fixed",
        help="fixed: log2 K bits per token, decodes anywhere; model: range coding under the "
        "masked transformer, smaller, decode on the same kind of device",
    )
    compress.add_argument(
        "--kmeans",
        choices=("plain", "usage"),
        default="plain",
        help="plain K-means, or weighted by code usage on photos (ZSS_COMPRESSION_USAGE_IMAGES)",
    )
    compress.add_argument("--decoded", type=Path, help="also write the decoded image (PNG)")
    compress.add_argument(
        "--no-baselines", action="store_true", help="skip the JPEG/WebP comparison"
    )
    compress.set_defaults(handler=lambda args: _compress(args, make_studio))

    decompress = subparsers.add_parser("decompress", help="decode a .zsc file into a PNG")
    decompress.add_argument("file", type=Path, help="the .zsc file")
    decompress.add_argument("-o", "--output", type=Path, help="the PNG (default: FILE.png)")
    decompress.set_defaults(handler=lambda args: _decompress(args, make_studio))

    restore = subparsers.add_parser(
        "restore-tokens", help="lose a fraction of a .zsc file's tokens and restore them"
    )
    restore.add_argument("file", type=Path, help="the .zsc file")
    restore.add_argument("--loss", type=float, default=0.2, help="fraction of tokens lost")
    restore.add_argument("--seed", type=int, default=0, help="which tokens are lost")
    restore.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="transformer passes")
    restore.add_argument("--original", type=Path, help="the original image, to measure against")
    restore.add_argument("-o", "--output", type=Path, default=Path("outputs"), help="output folder")
    restore.set_defaults(handler=lambda args: _restore(args, make_studio))


def _run(args, make_studio, description: str, call):
    engine = make_studio(args).engine("compression")
    with progress_bar(description) as progress:
        return call(engine, progress)


def _compress(args: argparse.Namespace, make_studio) -> int:
    result = _run(
        args,
        make_studio,
        "compress",
        lambda engine, progress: engine.compress(
            args.image, args.codebook, args.coder, not args.no_baselines, progress, args.kmeans
        ),
    )
    output = args.output or args.image.with_suffix(".zsc")
    output.write_bytes(result.zsc)
    if args.decoded:
        args.decoded.write_bytes(png_bytes(result.decoded))
    m = result.metrics
    print(
        f"{output}: {m['file_bytes']} bytes, {m['bpp']:.4f} bpp, PSNR {m['psnr_db']:.2f} dB",
        file=sys.stderr,
    )
    print(json.dumps({"metrics": m, "rates": result.rates}, indent=2, default=str))
    return 0


def _decompress(args: argparse.Namespace, make_studio) -> int:
    result = _run(
        args,
        make_studio,
        "decompress",
        lambda engine, progress: engine.decompress(args.file, progress),
    )
    output = args.output or args.file.with_suffix(".png")
    output.write_bytes(png_bytes(result.image))
    print(output, file=sys.stderr)
    print(json.dumps(result.metrics, indent=2, default=str))
    return 0


def _restore(args: argparse.Namespace, make_studio) -> int:
    result = _run(
        args,
        make_studio,
        "restore",
        lambda engine, progress: engine.restore_tokens(
            args.file, args.loss, args.seed, args.steps, args.original, progress
        ),
    )
    for path in result.save(args.output):
        print(path, file=sys.stderr)
    print(json.dumps(result.metrics, indent=2, default=str))
    return 0
