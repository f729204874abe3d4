"""`zsstudio gan-adapt` and `zsstudio gan-sample`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .requests import DEFAULT_BATCH, AdaptRequest, SampleRequest
from .settings import METHODS


def add_commands(commands, make_studio) -> None:
    adapt = commands.add_parser(
        "gan-adapt",
        help="adapt a StyleGAN2 from a source to a target text (SVL or StyleGAN-NADA)",
        description="Writes the adapted generator ({'g_ema': ...}) to -o, and next to it "
        "<name>.png (before/after grid), <name>-losses.csv, <name>-metrics.json and "
        "<name>-recipe.json.",
    )
    adapt.add_argument("--model", default="cat256", help="registry generator (zsstudio models)")
    adapt.add_argument("--source", required=True, help='what the generator makes now, e.g. "photo"')
    adapt.add_argument("--target", required=True, help='what it should make, e.g. "sketch"')
    adapt.add_argument("--method", choices=METHODS, default="svl")
    adapt.add_argument("--iterations", type=int, default=300)
    adapt.add_argument("--seed", type=int, default=0)
    adapt.add_argument("--batch", type=int, default=None, help="default: SVL 4, NADA 2")
    adapt.add_argument("--lr", type=float, default=0.002)
    adapt.add_argument("--layer-k", type=int, default=0, help="NADA adaptive layers (0: all)")
    adapt.add_argument("--second-clip", action="store_true", help="add CLIP ViT-B/16")
    adapt.add_argument("--stage1-iterations", type=int, default=2000, help="SVL stage 1")
    adapt.add_argument("--variations", type=int, default=6, help="SVL K")
    adapt.add_argument("--lambda-cov", type=float, default=1e3)
    adapt.add_argument("--lambda-ewc", type=float, default=1e7)
    adapt.add_argument("--lambda-rel", type=float, default=1e2)
    adapt.add_argument("--eval-samples", type=int, default=16)
    adapt.add_argument("-o", "--output", type=Path, default=Path("adapted.pt"))
    adapt.set_defaults(handler=lambda args: _adapt(args, make_studio))

    sample = commands.add_parser("gan-sample", help="draw images from an adapted generator .pt")
    sample.add_argument("checkpoint", type=Path)
    sample.add_argument("-n", "--count", type=int, default=8)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--truncation", type=float, default=0.7)
    sample.add_argument("--target", default="", help="also report the CLIP score to this text")
    sample.add_argument("-o", "--output", type=Path, default=Path("samples"), help="folder")
    sample.set_defaults(handler=lambda args: _sample(args, make_studio))


def _adapt(args: argparse.Namespace, make_studio) -> int:
    from ..cli import progress_bar

    request = AdaptRequest(
        source=args.source,
        target=args.target,
        model=args.model,
        method=args.method,
        iterations=args.iterations,
        seed=args.seed,
        batch=args.batch or DEFAULT_BATCH[args.method],
        lr=args.lr,
        layer_k=args.layer_k,
        second_clip=args.second_clip,
        stage1_iterations=args.stage1_iterations,
        variations=args.variations,
        lambda_cov=args.lambda_cov,
        lambda_ewc=args.lambda_ewc,
        lambda_rel=args.lambda_rel,
        eval_samples=args.eval_samples,
    )
    request.validate()
    engine = make_studio(args).engine("gan")
    with progress_bar("gan-adapt") as progress:
        result = engine.run(request, progress)
    output: Path = args.output
    output.parent.mkdir(parents=True, exist_ok=True)
    print(output)
    result.save_as(output, output.with_suffix(".png"), output.parent, f"{output.stem}-")
    if result.cancelled:
        print(f"stopped after {result.iterations_done} iterations", file=sys.stderr)
    print(json.dumps(result.metrics, indent=2))
    return 0


def _sample(args: argparse.Namespace, make_studio) -> int:
    from ..cli import progress_bar, save_and_report

    request = SampleRequest(
        checkpoint=str(args.checkpoint),
        count=args.count,
        seed=args.seed,
        truncation=args.truncation,
        target=args.target,
    )
    request.validate()
    engine = make_studio(args).engine("gan")
    with progress_bar("gan-sample") as progress:
        result = engine.sample(request, progress)
    return save_and_report(result, args.output)
