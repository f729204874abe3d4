"""Layout guidance cost: guided vs unguided generation on the same pipeline, steps and seed.

Prints JSON: seconds and peak memory of each, and their ratios (target: time ratio <= 2.0
with the default guidance settings). Each mode runs in its own process so peak memory is its
own: CUDA peak allocated bytes on a GPU, peak resident set size on CPU.

    python benchmarks/layout.py                          # tiny random SD-1.5, CPU-friendly
    python benchmarks/layout.py --model /models/sd15     # real weights (a diffusers folder)
    python benchmarks/layout.py --full-size-random       # SD-1.5-sized random weights: timing
                                                         # only, when real weights are not at hand
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # tiny model builders

from full_size_models import build_sd15  # noqa: E402 (after the path set-up)
from measure import run_in_process, time_runs  # noqa: E402

PROMPT = "a photo of a cat and a dog sitting on a sofa"
BOXES = [("a cat", 0.05, 0.3, 0.48, 0.95), ("a dog", 0.52, 0.25, 0.97, 0.95)]


def worker(args: argparse.Namespace) -> dict:
    """Run one mode (guided or not) in this process and measure it."""
    from engines.layout import LayoutEngine, LayoutRequest
    from engines.studio import Studio

    os.environ["ZSS_MODEL_LAYOUT_SD15"] = str(args.model)
    studio = Studio(device=args.device)
    engine = LayoutEngine(studio.manager)
    guided = args.worker == "guided"
    request = LayoutRequest(
        prompt=PROMPT,
        boxes=BOXES if guided else [],
        box_units="normalized",
        width=args.size,
        height=args.size,
        steps=args.steps,
        seed=args.seed,
        score=False,
    )
    cuda = studio.manager.device.device.startswith("cuda")
    warm_up = LayoutRequest(**{**request.to_params(), "steps": 2})
    seconds, peak, metrics = time_runs(engine, warm_up, request, args.repeats, cuda)
    keep = ("guided_steps", "guidance_forwards", "latent_updates", "nan_skipped_steps")
    return {
        "seconds": seconds,
        "peak_mb": peak / 2**20,
        "device": studio.manager.device.describe(),
        **{k: metrics[k] for k in keep if k in metrics},
    }


def run_worker(mode: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--worker", mode, "--model", str(args.model)]
    command += ["--device", args.device, "--size", str(args.size), "--steps", str(args.steps)]
    command += ["--seed", str(args.seed), "--repeats", str(args.repeats)]
    return run_in_process(command, mode)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="a Stable Diffusion 1.5 diffusers folder")
    parser.add_argument("--full-size-random", action="store_true")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", type=int, default=None, help="default: 512 (128 on tiny)")
    parser.add_argument("--steps", type=int, default=None, help="default: 50 (10 on tiny)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the median counts")
    parser.add_argument("--worker", choices=("plain", "guided"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    if args.worker:
        print(json.dumps(worker(args)))
        return 0

    with tempfile.TemporaryDirectory(prefix="zss-layout-bench-") as scratch:
        if args.model:
            kind = "weights from --model"
        elif args.full_size_random:
            import torch

            dtype = "float16" if torch.cuda.is_available() else "float32"
            args.model = build_sd15(Path(scratch) / "sd15-random", dtype)
            kind = "SD-1.5 architecture, random weights (timing only)"
        else:
            from tiny_models import save_tiny_sd15_pipeline

            args.model = save_tiny_sd15_pipeline(Path(scratch) / "tiny-sd15")
            kind = "tiny SD-1.5-structured pipeline, random weights"
        tiny = not (kind.startswith("weights") or args.full_size_random)
        args.size = args.size or (128 if tiny else 512)
        args.steps = args.steps or (10 if tiny else 50)
        plain = run_worker("plain", args)
        guided = run_worker("guided", args)

    from engines.layout import LayoutRequest

    defaults = LayoutRequest()
    report = {
        "benchmark": "layout",
        "model": kind,
        "device": guided["device"],
        "size": args.size,
        "steps": args.steps,
        "seed": args.seed,
        "boxes": len(BOXES),
        "guidance": {
            "strength": defaults.strength,
            "guided_fraction": defaults.guided_fraction,
            "iterations": defaults.iterations,
            "loss_threshold": defaults.loss_threshold,
        },
        "unguided": plain,
        "guided": guided,
        "time_ratio": guided["seconds"] / plain["seconds"],
        "peak_memory_ratio": guided["peak_mb"] / plain["peak_mb"],
        "peak_memory_measure": "CUDA max allocated" if "cuda" in guided["device"] else "max RSS",
        "time_ratio_target": 2.0,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
