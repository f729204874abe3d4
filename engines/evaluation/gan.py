"""The GAN protocol (docs/gan.md, Evaluation): one generator adapted from "photo" to each of the
paper's target domains by StyleGAN-NADA and by SVL on the same seeds; measured on the same fixed
samples by the engine: CLIP score to the target text, alignment of the image change with the
text direction, and CLIP-feature diversity (mean pairwise 1 - cos) before and after; the loss
curves of every run."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import InputError
from . import plots
from .layout import seeds
from .report import Report, mean
from .store import ItemStore

DOMAINS = ("sketch", "cartoon", "Pixar character")
"""Targets the SVL paper adapts FFHQ photos to (with StyleGAN-NADA's source text "photo")."""
METHODS = ("nada", "svl")
FIGURES = (
    "clip_target_score_before", "clip_target_score_after", "clip_direction_alignment",
    "diversity_clip_before", "diversity_clip_after", "lpips_intra_cluster_after",
    "final_loss", "adapt_seconds",
)  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("gan")
    group.add_argument(
        "--gan-model", default="ffhq1024", help="registry generator (default %(default)s)"
    )
    group.add_argument(
        "--gan-targets", default=",".join(DOMAINS), help="target texts, comma separated"
    )
    group.add_argument("--gan-iterations", type=int, default=300, help="adaptation steps")
    group.add_argument("--gan-samples", type=int, default=64, help="fixed samples measured")
    group.add_argument("--gan-batch", type=int, default=None, help="batch (default: each method's)")
    group.add_argument(
        "--gan-stage1-iterations",
        type=int,
        default=None,
        help="SVL stage 1 steps (default: the engine's)",
    )


def plan(args: argparse.Namespace) -> list[dict[str, Any]]:
    from ..gan import AdaptRequest

    targets = [t.strip() for t in args.gan_targets.split(",") if t.strip()]
    if not targets:
        raise InputError("--gan-targets: give at least one target text.")
    items = []
    for target in targets:
        for seed in seeds(args):
            for method in METHODS:
                item = {
                    "id": f"{target.replace(' ', '-')}-s{seed}-{method}",
                    "source": "photo",
                    "target": target,
                    "method": method,
                    "seed": seed,
                    "model": args.gan_model,
                    "iterations": args.gan_iterations,
                    "eval_samples": args.gan_samples,
                    "batch": args.gan_batch,
                    "stage1_iterations": args.gan_stage1_iterations,
                }
                _request(item, AdaptRequest).validate()
                items.append(item)
    return items


def _request(item: dict[str, Any], request_type):
    options = {"stage1_iterations": item["stage1_iterations"]} if item["stage1_iterations"] else {}
    return request_type(
        source=item["source"],
        target=item["target"],
        model=item["model"],
        method=item["method"],
        iterations=item["iterations"],
        seed=item["seed"],
        batch=item["batch"],
        eval_samples=item["eval_samples"],
        preview_every=max(1, item["iterations"]),
        **options,
    )


def evaluator(studio, args: argparse.Namespace):
    from ..gan import AdaptRequest

    engine = studio.engine("gan")

    def evaluate(item: dict[str, Any], store: ItemStore) -> dict[str, Any]:
        result = engine.run(_request(item, AdaptRequest))
        if result.before_after is not None:
            result.before_after.save(store.artifacts(item) / "before_after.png")
        return {
            "metrics": {k: result.metrics[k] for k in FIGURES if k in result.metrics},
            "history": [{"iteration": r["iteration"], "total": r["total"]} for r in result.history],
        }

    return evaluate


def summarise(records: list[dict[str, Any]], args: argparse.Namespace) -> Report:
    rows = []
    for method in METHODS:
        chosen = [r["metrics"] for r in records if r["item"]["method"] == method]
        if chosen:
            row: dict[str, Any] = {"method": "StyleGAN-NADA" if method == "nada" else "ours, SVL"}
            row["runs"] = len(chosen)
            for key in FIGURES:
                row[key] = mean(m.get(key) for m in chosen)
            rows.append(row)
    curves = {
        f"{r['item']['target']}, {r['item']['method']}, seed {r['item']['seed']}": [
            (h["iteration"], h["total"]) for h in r["history"]
        ]
        for r in records
    }
    figures = {"loss_curves.png": plots.curves(curves, "iteration", "total loss", "Loss curves")}
    return Report(
        capability="gan",
        title="GAN adaptation: NADA vs SVL on the same seeds and prompts",
        protocol=(
            f"The {args.gan_model} generator adapted from 'photo' to each target text by "
            "StyleGAN-NADA and by SVL, same seeds; each run measured by the engine on the same "
            "fixed samples (truncation 0.7): CLIP target score (mean cos to the prompt-ensembled "
            "target text), direction alignment (cos of the image change with the text "
            "direction), CLIP-feature diversity (mean pairwise 1 - cos) before and after, "
            "intra-cluster LPIPS where lpips and its weights are present."
        ),
        columns=[
            "method",
            "runs",
            "clip_target_score_after",
            "clip_direction_alignment",
            "diversity_clip_before",
            "diversity_clip_after",
            "lpips_intra_cluster_after",
            "final_loss",
            "adapt_seconds",
        ],  # fmt: skip
        rows=rows,
        records=records,
        settings={
            "model": args.gan_model,
            "targets": args.gan_targets,
            "seeds": args.seeds,
            "iterations": args.gan_iterations,
            "samples": args.gan_samples,
        },  # fmt: skip
        plots=figures,
        notes=["Before/after grids are in items/<item>/before_after.png."],
    )
