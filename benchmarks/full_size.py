"""Every engine at its released architecture, random weights, one request each through
Engine.run: load seconds, run seconds, peak memory, dtype, and whether every output is finite.

    python benchmarks/full_size.py --device cuda              # GPU: the tabs' defaults
    python benchmarks/full_size.py --device cpu               # CPU-sized values, steps capped
    python benchmarks/full_size.py --only layout,nerf --out /tmp/report
    python benchmarks/full_size.py --tiny                     # tiny models (the CI smoke test)
    python benchmarks/full_size.py --low-memory               # with the low-memory levers

The models are built from benchmarks/configs/ (benchmarks/full_size_models.py), saved in the
real formats and loaded through the engines' own loading code; each engine runs in a process
of its own, so its peak memory is its own (CUDA: peak allocated and reserved since the models
loaded; CPU: the process's peak resident set, loading included). "finite" checks the output of
every model's forward, encode and decode call (latents, features, images, waveforms) and every
float array of the result. Prints JSON, writes full_size.json and full_size.md into --out, and
exits 1 when any output is not finite or a run fails. Each engine also gets our own estimate of
its GPU memory for the default run (benchmarks/memory_estimate.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from full_size_models import ENGINE_GROUPS, GROUPS  # noqa: E402 (after the path set-up)

CASES = {
    "layout": "layout",
    "video": "video",
    "nerf": "nerf",
    "gan-256": "gan",
    "gan-1024": "gan",
    "compression": "compression",
    "speech": "speech",
}
"""Each case runs in its own process: case name -> engine."""
ENGINES = tuple(dict.fromkeys(CASES.values()))
ASSETS = ROOT / "assets"
LAYOUT_PROMPT = "a photo of a cat and a dog sitting on a sofa"
LAYOUT_BOXES = [("a cat", 0.05, 0.3, 0.48, 0.95), ("a dog", 0.52, 0.25, 0.97, 0.95)]
VIDEO_PROMPT = "a toy robot walking across a wooden table, soft daylight"
SPEECH_TEXT = "The old lighthouse stood at the end of the pier."
# Step caps: CPU keeps the whole run near 20 minutes on 2 cores; the GPU caps keep NeRF and the
# GAN inside the 8 minutes one device call allows (their defaults are minutes-long trainings).
CPU_CAPS = {"layout": 10, "video": 2, "nerf_fit": 20, "nerf_edit": 2, "gan": 2, "gan_stage1": 5}
GPU_CAPS = {"nerf_fit": 1000, "nerf_edit": 100, "gan": 100, "gan_stage1": 500}
TINY_CAPS = {"layout": 2, "video": 1, "nerf_fit": 10, "nerf_edit": 1, "gan": 1, "gan_stage1": 2}
PRELOAD = {
    "layout": ("sd15",),
    "video": ("pipeline", "ip_adapter"),
    "nerf": ("vae", "diffusion", "clip"),
    "gan-256": ("clip", "clip_b16", "cat256"),
    "gan-1024": ("clip", "clip_b16", "ffhq1024"),
    "compression": ("codec",),
    "speech": ("tts", "knn_vc", "speaker"),
}
"""The parts each case's request uses, loaded (and timed) before it runs."""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="cuda, cpu or auto")
    parser.add_argument("--only", default="", help=f"comma-separated: {', '.join(ENGINES)}")
    parser.add_argument("--out", type=Path, default=Path("full-size-report"))
    parser.add_argument("--tiny", action="store_true", help="the tests' tiny models")
    parser.add_argument("--low-memory", action="store_true", help="the low-memory levers on")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per engine")
    parser.add_argument("--inject-nan", default="", metavar="CASE", help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=tuple(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--build", choices=tuple(GROUPS), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def selected_cases(only: str) -> list[str]:
    wanted = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in ENGINES and name not in CASES]
    if unknown:
        raise SystemExit(f"--only: unknown {', '.join(unknown)}; choose from {', '.join(ENGINES)}")
    if not wanted:
        return list(CASES)
    return [case for case, engine in CASES.items() if case in wanted or engine in wanted]


# -- requests ----------------------------------------------------------------------------------


def caps_for(tiny: bool, gpu: bool) -> dict[str, int]:
    return TINY_CAPS if tiny else GPU_CAPS if gpu else CPU_CAPS


def _capped(value: int, caps: dict[str, int], key: str) -> int:
    return min(value, caps[key]) if key in caps else value


def requests_for(case: str, gpu: bool, tiny: bool, scratch: Path) -> list[tuple[str, Any]]:
    """The case's request(s) at the tab's defaults for the device, step-capped: [(label, make)],
    `make(previous_result)` builds the request (NeRF's edit reads the fit's scene file)."""
    caps = caps_for(tiny, gpu)
    engine = CASES[case]
    if engine == "layout":
        from engines.layout import LayoutRequest

        sized = LayoutRequest.sized_defaults(gpu)
        if tiny:
            sized.update(width=64, height=64)
        steps = _capped(sized.pop("steps"), caps, "layout")
        request = LayoutRequest(
            prompt=LAYOUT_PROMPT,
            boxes=LAYOUT_BOXES,
            box_units="normalized",
            score=False,
            steps=steps,
            **sized,
        )
        return [("generate", lambda _: request)]
    if engine == "video":
        from engines.video import SubjectVideoRequest

        defaults = {**vars(SubjectVideoRequest()), **SubjectVideoRequest.sized_defaults(gpu)}
        size = defaults["width"] if gpu else 256  # the range starts at 256
        frames = 8 if tiny or not gpu else defaults["frames"]  # the range starts at 8
        request = SubjectVideoRequest(
            prompt=VIDEO_PROMPT,
            subject=str(ASSETS / "video" / "toy-robot.png"),
            subject_phrase="toy robot",
            keyframes=[(0, 0.04, 0.35, 0.38, 0.9), (frames - 1, 0.6, 0.35, 0.95, 0.9)],
            frames=frames,
            width=size,
            height=size,
            steps=_capped(defaults["steps"], caps, "video"),
            metrics=False,  # CLIP, DINO and Grounding DINO are metric models, not the method's
        )
        return [("generate", lambda _: request)]
    if engine == "nerf":
        return _nerf_requests(gpu, tiny, caps, scratch)
    if engine == "gan":
        from engines.gan import AdaptRequest

        sized = {**vars(AdaptRequest()), **AdaptRequest.sized_defaults(gpu)}
        iterations = _capped(sized.pop("iterations"), caps, "gan")
        stage1 = sized.pop("stage1_iterations")
        keep = ("grid_size", "eval_samples")
        sized = {k: sized[k] for k in keep if sized.get(k) is not None}
        request = AdaptRequest(
            source="photo",
            target="pencil sketch",
            model="cat256" if case == "gan-256" else "ffhq1024",
            iterations=iterations,
            stage1_iterations=_capped(stage1, caps, "gan_stage1"),
            preview_every=iterations,
            second_clip=True,  # both critics: ViT-B/32 and B/16
            **{k: v for k, v in sized.items() if k != "preview_every"},
        )
        return [("adapt", lambda _: request)]
    if engine == "compression":
        from engines.compression import CompressRequest

        image = ASSETS / "compression" / "astronaut.png"
        if tiny:
            from PIL import Image

            small = scratch / "astronaut-64.png"
            with Image.open(image) as picture:
                picture.convert("RGB").resize((64, 64)).save(small)
            image = small
        request = CompressRequest(image=str(image))
        return [("compress", lambda _: request)]
    if engine == "speech":
        from engines.speech import TTSRequest

        clips = ASSETS / "speech"
        request = TTSRequest(
            text=SPEECH_TEXT,
            voice=str(clips / "voice_low.wav"),
            style=str(clips / "style_high_fast.wav"),  # WavLM-Large and the vocoder too
        )
        return [("tts with style", lambda _: request)]
    raise ValueError(case)


def _nerf_requests(gpu: bool, tiny: bool, caps: dict[str, int], scratch: Path):
    from engines.nerf import EditRequest, ReconstructRequest

    fit = {**vars(ReconstructRequest()), **ReconstructRequest.sized_defaults(gpu)}
    fit = {k: fit[k] for k in ("resolution", "grid", "samples", "batch_rays") if fit[k] is not None}
    fit_steps = {**vars(ReconstructRequest()), **ReconstructRequest.sized_defaults(gpu)}["steps"]
    edit_defaults = {**vars(EditRequest()), **EditRequest.sized_defaults(gpu)}
    scene = "example"
    if tiny:
        from engines.nerf.example import write_example

        scene = str(write_example(scratch / "nerf-example", 32))
        fit = {"resolution": 32, "grid": 16, "samples": 24, "batch_rays": 256}
    steps = _capped(fit_steps, caps, "nerf_fit")
    fitting = ReconstructRequest(scene=scene, steps=steps, preview_every=max(10, steps), **fit)
    edit_steps = _capped(edit_defaults["steps"], caps, "nerf_edit")
    frames = edit_defaults["frames"] if gpu else 4

    def edit(fitted) -> EditRequest:
        path = scratch / "fitted.nerf"
        path.write_bytes(fitted.scene)
        return EditRequest(
            scene=str(path),
            source="a toy",
            target="a golden toy",
            steps=edit_steps,
            frames=frames,
            preview_every=edit_steps,
        )

    return [("reconstruct", lambda _: fitting), ("edit", edit)]


def default_request(case: str, scratch: Path):
    """The GPU default request the memory estimate is for (NeRF: the fit's resolution)."""
    label, make = requests_for(case, True, False, scratch)[0]
    return make(None)


# -- the worker: one case in this process ----------------------------------------------------


def worker(args: argparse.Namespace) -> dict:
    case = args.worker
    with tempfile.TemporaryDirectory(prefix=f"zss-full-size-{case}-") as scratch:
        return _work(args, case, Path(scratch))


def _work(args: argparse.Namespace, case: str, scratch: Path) -> dict:
    import torch
    from finite_check import FiniteCheck, result_is_finite, top_level_modules
    from memory_estimate import estimate

    from engines.studio import Studio

    studio = Studio(device=args.device, low_memory=args.low_memory)
    engine = studio.engine(CASES[case])
    device = studio.manager.device
    cuda = device.device.startswith("cuda")
    requests = requests_for(case, cuda, args.tiny, scratch)

    started = time.perf_counter()
    with studio.manager.use(engine.name) as parts:
        for name in PRELOAD[case]:
            parts.get(name)
        modules = top_level_modules(parts.components)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    load_s = time.perf_counter() - started
    check = FiniteCheck(modules, poison=args.inject_nan == case)
    runs, result, error = [], None, None
    for label, make in requests:
        began = time.perf_counter()
        try:
            with check:
                result = engine.run(make(result))
        except Exception as err:  # noqa: BLE001 (reported: the row says what failed)
            error = f"{label}: {type(err).__name__}: {err}"
            break
        if cuda:
            torch.cuda.synchronize()
        runs.append(
            {
                "request": label,
                "run_s": round(time.perf_counter() - began, 2),
                "result_finite": result_is_finite(result),
                "params": _short_params(result.recipe.params, result.metrics),
            }
        )
    row = {
        "case": case,
        "engine": engine.name,
        "device": device.describe(),
        "dtype": sorted({str(p.dtype).replace("torch.", "") for p in _parameters(modules)}),
        "low_memory": studio.status().get("low_memory", {}),
        "load_s": round(load_s, 2),
        "run_s": round(sum(r["run_s"] for r in runs), 2),
        "runs": runs,
        "models_checked": len(modules),
        "model_calls_checked": check.calls,
        "nonfinite_calls": check.bad_calls,
        "first_nonfinite": check.first_bad,
        "estimate": estimate(CASES[case], default_request(case, scratch), modules),
    }
    row["finite"] = not check.bad_calls and all(r["result_finite"] for r in runs) and not error
    if error:
        row["error"] = error
    if cuda:
        row["cuda_peak_allocated_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
        row["cuda_peak_reserved_gb"] = round(torch.cuda.max_memory_reserved() / 2**30, 3)
    rss = peak_rss_gb()
    row["peak_rss_gb"] = None if rss is None else round(rss, 3)
    row["torch_threads"] = torch.get_num_threads()
    return row


def peak_rss_gb() -> float | None:
    """This process's own peak resident set: Linux's VmHWM, which starts afresh at exec (the
    rusage peak a child reports includes its parent's at the fork)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    from engines.peak_memory import process_peak_rss_mb

    rss = process_peak_rss_mb()
    return None if rss is None else rss / 1024


def _parameters(modules: dict[str, Any]):
    for module in modules.values():
        yield from module.parameters()


def _short_params(params: dict, metrics: dict) -> dict:
    """The request's size settings, and the GAN's micro-batch (the engine chooses it)."""
    keep = ("width", "height", "steps", "frames", "resolution", "iterations", "stage1_iterations")
    keep += ("model", "method", "batch", "codebook_size", "coder", "grid", "samples")
    short = {k: params[k] for k in keep if k in params}
    if "micro_batch" in metrics:
        short["micro_batch"] = metrics["micro_batch"]
    return short


# -- the parent: build, run each case in a process, report -------------------------------------


def build_groups(groups: list[str], scratch: Path, tiny: bool, dtype: str) -> dict[str, dict]:
    """{group: {component: path}}; full-size groups are built in a process each, so the
    builder's memory is given back before the engines run."""
    built = {}
    for group in groups:
        folder = scratch / group
        if tiny:
            paths = GROUPS[group](folder, True, dtype)
        else:
            command = [sys.executable, __file__, "--build", group, "--folder", str(folder)]
            done = subprocess.run(
                [*command, "--dtype", dtype], capture_output=True, text=True, check=False
            )
            if done.returncode:
                raise SystemExit(f"building {group} failed:\n{done.stderr[-4000:]}")
            paths = json.loads(done.stdout.strip().splitlines()[-1])
        built[group] = {k: str(v) for k, v in paths.items()}
    return built


def overrides(engine: str, built: dict[str, dict]) -> dict[str, str]:
    from engines.registry import Registry, override_variable

    components = {spec.name for spec in Registry.load().components(engine)}
    env = {}
    for group in ENGINE_GROUPS[engine]:
        for component, path in built[group].items():
            if component in components:
                env[override_variable(engine, component)] = path
    return env


def run_case(case: str, args, env: dict[str, str]) -> dict:
    command = [sys.executable, __file__, "--worker", case, "--device", args.device]
    command += ["--inject-nan", args.inject_nan] if args.inject_nan else []
    command += ["--tiny"] if args.tiny else []
    command += ["--low-memory"] if args.low_memory else []
    try:
        done = subprocess.run(
            command,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=args.timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"case": case, "finite": False, "error": f"timed out after {args.timeout} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        tail = done.stderr.strip().splitlines()[-3:]
        return {"case": case, "finite": False, "error": f"worker failed: {' | '.join(tail)}"}
    return json.loads(lines[-1])


def markdown(report: dict) -> str:
    gpu = any("cuda_peak_allocated_gb" in row for row in report["rows"])
    memory = "CUDA peak allocated / reserved (GB)" if gpu else "peak RSS (GB)"
    lines = [
        f"Full-size check, {report['date']}, {report['device']}; models: {report['models']}.",
        "",
        f"| case | requests | load s | run s | {memory} | dtype | finite | "
        "GPU estimate, default run (GB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        if "error" in row and "runs" not in row:
            lines.append(f"| {row['case']} | failed: {row['error']} | | | | | no | |")
            continue
        if gpu:
            peak = f"{row.get('cuda_peak_allocated_gb')} / {row.get('cuda_peak_reserved_gb')}"
        else:
            peak = f"{row.get('peak_rss_gb')}"
        asked = "; ".join(
            f"{r['request']} ({', '.join(f'{k} {v}' for k, v in r['params'].items())})"
            for r in row["runs"]
        )
        if "error" in row:
            asked += f"; failed: {row['error']}"
        guess = row["estimate"]
        estimate_text = (
            f"{guess['total_gb']} = {guess['weights_gb']} weights + "
            f"{guess['largest_activation_gb']} ({guess['largest_activation']})"
            + ("" if guess["fits_12gb"] else " > 12")
        )
        lines.append(
            f"| {row['case']} | {asked} | {row['load_s']} | {row['run_s']} | {peak} | "
            f"{', '.join(row['dtype'])} | {'yes' if row['finite'] else 'NO'} | {estimate_text} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.build:
        print(
            json.dumps(
                {k: str(v) for k, v in GROUPS[args.build](args.folder, False, args.dtype).items()}
            )
        )
        return 0
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    import torch

    cases = selected_cases(args.only)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = "float16" if args.device.startswith("cuda") else "float32"
    rows = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="zss-full-size-") as scratch:
        engines = list(dict.fromkeys(CASES[case] for case in cases))
        groups = list(dict.fromkeys(g for e in engines for g in ENGINE_GROUPS[e]))
        built = build_groups(groups, Path(scratch), args.tiny, dtype)
        build_s = time.perf_counter() - started
        for case in cases:
            rows.append(run_case(case, args, overrides(CASES[case], built)))
            print(json.dumps(rows[-1]), file=sys.stderr)
    report = {
        "benchmark": "full_size",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "device": next((r["device"] for r in rows if "device" in r), args.device),
        "models": "tiny random (tests/tiny_*.py)"
        if args.tiny
        else "released architectures, random weights (benchmarks/configs/)",
        "caps": caps_for(args.tiny, args.device.startswith("cuda")),
        "low_memory": args.low_memory,
        "load_average": list(os.getloadavg()),
        "build_s": round(build_s, 1),
        "total_s": round(time.perf_counter() - started, 1),
        "rows": rows,
        "all_finite": all(row.get("finite") for row in rows),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "full_size.json").write_text(json.dumps(report, indent=2) + "\n", "utf-8")
    (args.out / "full_size.md").write_text(markdown(report), "utf-8")
    print(json.dumps(report, indent=2))
    return 0 if report["all_finite"] else 1


if __name__ == "__main__":
    sys.exit(main())
