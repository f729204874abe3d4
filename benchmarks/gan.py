"""GAN adaptation benchmark: iterations per second and peak memory of NADA and SVL on the same
generator, each method in its own process (so peak memory is its own), and the ratio SVL/NADA.
Prints JSON.

    python benchmarks/gan.py                               # tiny random StyleGAN2 + CLIP
    python benchmarks/gan.py --model stylegan2-cat-config-f.pt --clip /m/vit-b-32-openai
    python benchmarks/gan.py --random-size 1024            # published architecture, random weights

For SVL it also reports the EWC penalty next to the directional moment loss (first and last
iteration, weighted as they enter the total) and the Fisher's mean entry.

Tiny models time the code path only. `--random-size` builds the published StyleGAN2 config-f
and a ViT-B/32 CLIP with random weights: speed and memory are those of the real networks (the
losses and images are meaningless). Setup (SVL stage 1, Fisher) is timed separately.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="a rosinality StyleGAN2 checkpoint (.pt)")
    parser.add_argument("--clip", type=Path, help="an open_clip folder (default: models.toml)")
    parser.add_argument("--random-size", type=int, help="random published architecture, N px")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--batch", type=int, default=4, help="same batch for both methods")
    parser.add_argument("--stage1-iterations", type=int, default=2000)
    parser.add_argument("--methods", default="nada,svl")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def prepare_models(args, scratch: Path) -> dict[str, str]:
    """Write or locate the generator and CLIP files; returns the registry overrides."""
    from engines.registry import override_variable

    if args.model:
        generator, label = args.model, str(args.model)
    elif args.random_size:
        from engines.gan.checkpoint import save_generator
        from engines.gan.stylegan2 import Generator, GeneratorConfig

        net = Generator(GeneratorConfig.published(args.random_size))
        generator = save_generator(net, scratch / "random.pt", net.mean_latent())
        label = f"published config-f {args.random_size} px, random weights"
    else:
        sys.path.insert(0, str(ROOT / "tests"))
        from tiny_gan import save_tiny_generator

        generator, label = save_tiny_generator(scratch / "tiny.pt", 32), "tiny random (32 px)"
    overrides = {override_variable("gan", "cat256"): str(generator)}
    if args.clip:
        overrides[override_variable("gan", "clip")] = str(args.clip)
        clip_label = str(args.clip)
    elif args.random_size:
        from full_size_models import build_open_clip

        clip = build_open_clip(scratch / "clip", "open-clip-vit-b-32-openai")
        overrides[override_variable("gan", "clip")] = str(clip)
        clip_label = "ViT-B/32 architecture, random weights"
    elif not args.model:
        sys.path.insert(0, str(ROOT / "tests"))
        from tiny_gan import save_tiny_open_clip

        overrides[override_variable("gan", "clip")] = str(save_tiny_open_clip(scratch / "clip"))
        clip_label = "tiny random open_clip"
    else:
        clip_label = "models.toml gan.clip"
    return {"env": overrides, "generator": label, "clip": clip_label}


def run_child(args) -> dict:
    """One method in this process: load, adapt, report the engine's own measurements."""
    import torch

    from engines.gan import AdaptRequest
    from engines.peak_memory import process_peak_rss_mb
    from engines.studio import Studio

    studio = Studio(device=args.device)
    engine = studio.engine("gan")
    request = AdaptRequest(
        source="photo",
        target="pencil sketch",
        model="cat256",
        method=args.child,
        iterations=args.iterations,
        batch=args.batch,
        preview_every=args.iterations,
        stage1_iterations=args.stage1_iterations,
        eval_samples=max(4, args.batch),
        grid_size=2,
    )
    result = engine.run(request)
    figures = {
        key: result.metrics.get(key)
        for key in (
            "iterations_per_second",
            "median_step_seconds",
            "adapt_seconds",
            "setup_seconds",
            "peak_memory_mb",
        )
    }
    if figures["median_step_seconds"]:
        figures["steady_iterations_per_second"] = 1 / figures["median_step_seconds"]
    figures.update(loss_terms(result))
    figures["peak_process_rss_mb"] = process_peak_rss_mb()
    figures["device"] = studio.manager.device.describe()
    figures["torch_threads"] = torch.get_num_threads()
    return figures


def loss_terms(result) -> dict:
    """SVL: the EWC penalty beside the directional moment loss it restrains (both weighted, as
    they enter the total), at the first and last iteration, and the Fisher's mean entry."""
    history = result.history
    if not history or "directional_moment" not in history[-1]:
        return {}
    out = {"ewc_fisher_mean": result.metrics.get("ewc_fisher_mean")}
    for when, row in (("first", history[0]), ("last", history[-1])):
        for term in ("directional_moment", "ewc", "relation", "total"):
            if term in row:
                out[f"{term}_{when}"] = row[term]
    if out.get("directional_moment_last"):
        out["ewc_over_moment_last"] = out.get("ewc_last", 0.0) / out["directional_moment_last"]
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(run_child(args)))
        return 0
    with tempfile.TemporaryDirectory(prefix="zss-gan-bench-") as scratch:
        models = prepare_models(args, Path(scratch))
        env = {**os.environ, **models["env"]}
        report = {
            "benchmark": "gan",
            "generator": models["generator"],
            "clip": models["clip"],
            "iterations": args.iterations,
            "batch": args.batch,
            "stage1_iterations": args.stage1_iterations,
            "python": platform.python_version(),
            "methods": {},
        }
        for method in args.methods.split(","):
            command = [sys.executable, __file__, "--child", method, *child_flags(args)]
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if done.returncode:
                report["methods"][method] = {"error": done.stderr.strip().splitlines()[-1:]}
                continue
            report["methods"][method] = json.loads(done.stdout.strip().splitlines()[-1])
    report["ratios_svl_over_nada"] = ratios(report["methods"])
    print(json.dumps(report, indent=2))
    return 0


def child_flags(args) -> list[str]:
    return [
        "--device", args.device, "--iterations", str(args.iterations), "--batch",
        str(args.batch), "--stage1-iterations", str(args.stage1_iterations),
    ]  # fmt: skip


def ratios(methods: dict) -> dict:
    svl, nada = methods.get("svl", {}), methods.get("nada", {})
    out = {}
    for key in ("steady_iterations_per_second", "peak_memory_mb", "peak_process_rss_mb"):
        if svl.get(key) and nada.get(key):
            out[key] = round(svl[key] / nada[key], 3)
    return out


if __name__ == "__main__":
    sys.exit(main())
