"""Subject-video control cost: each box-control preset (ours, Peekaboo's, TrailBlazer's,
Direct-a-Video's) vs plain AnimateDiff + IP-Adapter (`control: none`) on the same pipeline,
subject, seed and steps.

Prints JSON: seconds and peak memory of each mode and their ratios, measured in one run (each
mode in its own process, so each peak is its own: CUDA peak allocated bytes on a GPU, peak
resident set size on CPU). Target: every preset's time ratio <= 1.5. On a GPU it also times
ours with model CPU offload. On a shared machine use `--rounds`: the modes take turns, round
after round, so a change in the machine's load falls on all of them alike; a mode's seconds
are the median of its rounds' medians, and the load average is reported beside them.

    python benchmarks/video.py                      # tiny random models, CPU-friendly
    python benchmarks/video.py --full-size-random   # SD-1.5 + motion adapter + IP-Adapter
                                                    # (ViT-H) architectures, random weights:
                                                    # timing and memory only
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # tiny model builders
sys.path.insert(0, str(ROOT / "benchmarks"))

from measure import run_in_process, time_runs  # noqa: E402 (after the path set-up)

PROMPT = "a toy robot walking across a wooden table, soft daylight"
SUBJECT = ROOT / "assets" / "video" / "toy-robot.png"
BOXES = [(0, 0.04, 0.35, 0.38, 0.9), (15, 0.6, 0.35, 0.95, 0.9)]
COMPONENTS = ("sd15", "motion_adapter", "ip_adapter")
MODES = {
    "plain": {"control": "none"},
    "ours": {"control": "ours"},
    "peekaboo": {"control": "peekaboo"},
    "trailblazer": {"control": "trailblazer"},
    "direct-a-video": {"control": "direct-a-video"},
    "ours_offload": {"control": "ours", "cpu_offload": True},
}
PRESETS = ("ours", "peekaboo", "trailblazer", "direct-a-video")


def build_tiny(folder: Path) -> dict[str, Path]:
    from tiny_models import save_tiny_sd15_pipeline
    from tiny_video import save_tiny_ip_adapter, save_tiny_motion_adapter

    return {
        "sd15": save_tiny_sd15_pipeline(folder / "sd15"),
        "motion_adapter": save_tiny_motion_adapter(folder / "motion"),
        "ip_adapter": save_tiny_ip_adapter(folder / "ip"),
    }


def build_full_size_random(folder: Path, dtype: str) -> dict[str, Path]:
    """The real architectures with random weights (benchmarks/configs/): SD 1.5, the v1-5-2
    motion adapter, and an h94/IP-Adapter folder (CLIP ViT-H/14 image encoder and an
    ip-adapter_sd15 file of the real shapes)."""
    from full_size_models import build_ip_adapter, build_motion_adapter, build_sd15

    return {
        "sd15": build_sd15(folder / "sd15", dtype),
        "motion_adapter": build_motion_adapter(folder / "motion", dtype),
        "ip_adapter": build_ip_adapter(folder / "ip", dtype),
    }


def worker(args: argparse.Namespace) -> dict:
    """Run one mode in this process and measure it."""
    from engines.registry import override_variable
    from engines.studio import Studio
    from engines.video import SubjectVideoEngine, SubjectVideoRequest

    for component, folder in json.loads(args.folders).items():
        os.environ[override_variable("video", component)] = folder
    studio = Studio(device=args.device)
    engine = SubjectVideoEngine(studio.manager)
    cuda = studio.manager.device.device.startswith("cuda")
    mode = MODES[args.worker]
    if mode.get("cpu_offload") and not cuda:
        return {"skipped": "CPU offload needs a CUDA device"}
    last = args.frames - 1
    request = SubjectVideoRequest(
        prompt=PROMPT,
        subject=str(SUBJECT),
        subject_phrase="toy robot",
        keyframes=[(min(f, last), *box) for f, *box in BOXES],
        frames=args.frames,
        width=args.size,
        height=args.size,
        steps=args.steps,
        seed=args.seed,
        metrics=False,
        **mode,
    )
    warm_up = SubjectVideoRequest(**{**request.to_params(), "steps": 1})
    seconds, peak, metrics = time_runs(engine, warm_up, request, args.repeats, cuda)
    return {
        "seconds": seconds,
        "peak_gb": peak / 2**30,
        "controls": metrics["controls"],
        "device": studio.manager.device.describe(),
    }


def run_worker(mode: str, args: argparse.Namespace, folders: dict[str, Path]) -> dict:
    command = [sys.executable, __file__, "--worker", mode, "--device", args.device]
    command += ["--size", str(args.size), "--steps", str(args.steps), "--frames", str(args.frames)]
    command += ["--seed", str(args.seed), "--repeats", str(args.repeats)]
    command += ["--folders", json.dumps({k: str(v) for k, v in folders.items()})]
    return run_in_process(command, mode)


def merged(runs: list[dict]) -> dict:
    """One mode over the rounds: the median of the rounds' medians, the largest peak."""
    if "skipped" in runs[0]:
        return runs[0]
    seconds = [run["seconds"] for run in runs]
    return {
        **runs[-1],
        "seconds": statistics.median(seconds),
        "seconds_per_round": seconds,
        "peak_gb": max(run["peak_gb"] for run in runs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full-size-random", action="store_true")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", type=int, default=None, help="default: 512 (256 on tiny)")
    parser.add_argument("--steps", type=int, default=None, help="default: 25 (4 on tiny)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs; the median counts")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="the modes take turns this many times (each a process)",
    )
    parser.add_argument(
        "--modes", default=",".join(MODES), help="comma-separated; plain is always measured"
    )
    parser.add_argument("--worker", choices=tuple(MODES), help=argparse.SUPPRESS)
    parser.add_argument("--folders", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    if args.worker:
        print(json.dumps(worker(args)))
        return 0

    with tempfile.TemporaryDirectory(prefix="zss-video-bench-") as scratch:
        if args.full_size_random:
            import torch

            dtype = "float16" if torch.cuda.is_available() else "float32"
            folders = build_full_size_random(Path(scratch), dtype)
            kind = (
                "SD-1.5 + motion adapter v1-5-2 + IP-Adapter (ViT-H) architectures, random weights"
            )
        else:
            folders = build_tiny(Path(scratch))
            kind = "tiny SD-1.5-structured AnimateDiff + IP-Adapter, random weights"
        args.size = args.size or (512 if args.full_size_random else 256)
        args.steps = args.steps or (25 if args.full_size_random else 4)
        load_before = os.getloadavg()
        modes = ["plain"] + [m for m in args.modes.split(",") if m in MODES and m != "plain"]
        rounds = [
            {mode: run_worker(mode, args, folders) for mode in modes} for _ in range(args.rounds)
        ]
        load_after = os.getloadavg()
    results = {mode: merged([r[mode] for r in rounds]) for mode in modes}

    plain = results["plain"]
    ratios = {
        name: {
            "time_ratio": results[name]["seconds"] / plain["seconds"],
            "peak_memory_ratio": results[name]["peak_gb"] / plain["peak_gb"],
        }
        for name in PRESETS
        if name in results
    }
    report = {
        "benchmark": "video",
        "model": kind,
        "device": plain["device"],
        "frames": args.frames,
        "size": args.size,
        "steps": args.steps,
        "seed": args.seed,
        **results,
        "ratios_to_plain": ratios,
        "worst_time_ratio": max(r["time_ratio"] for r in ratios.values()),
        "peak_memory_measure": "CUDA max allocated" if "cuda" in plain["device"] else "max RSS",
        "rounds": args.rounds,
        "repeats": args.repeats,
        "load_average_1_5_15_min": {"before": load_before, "after": load_after},
        "time_ratio_target": 1.5,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
