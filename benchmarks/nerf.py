"""NeRF editing benchmark: reconstruction quality against time on the built-in scene, ED-NeRF's
efficiency claim (one latent iteration vs one RGB iteration at 512x512 rays, same field), the
cost of one DDS iteration against one SDS iteration, held-out PSNR on our synthetic
forward-facing and unbounded 360 captures, TensoRF's fit schedule against ours piece by piece,
and the drift of an edit whose guidance gradient is zero. Prints JSON; every ratio is measured
in this one run, on this device.

    python benchmarks/nerf.py --quick                 # CPU, a few minutes: the small parts
    python benchmarks/nerf.py                         # CPU, 2 threads, random SD-1.5 UNet
    python benchmarks/nerf.py --device cuda --minutes 3
    python benchmarks/nerf.py --unet tiny --minutes 1 # quick look
    python benchmarks/nerf.py --parts schedule,zero_gradient_edit   # the fit schedule's effect

`--quick` runs `captures,schedule,zero_gradient_edit` at small sizes (the JSON's `sizes` says
which): held-out PSNR on the built-in scene (the schedule part's default run), on the
forward-facing and on the unbounded capture, the schedule's effect, and the zero-gradient drift.

The VAE latents used in the fit come from a tiny random VAE (the fit's cost, not its latent
quality, is measured: the RGB head's held-out PSNR is independent of the VAE's weights). The
UNet has Stable Diffusion 1.5's architecture with random weights (`--unet sd15`): its speed
and memory are those of the real network, its output is meaningless.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--minutes", type=float, default=10.0, help="reconstruction budget")
    parser.add_argument("--steps", type=int, default=3000, help="planned fit steps (schedules)")
    parser.add_argument("--batch-rays", type=int, default=4096)
    parser.add_argument("--samples", type=int, default=96)
    parser.add_argument("--grid", type=int, default=128)
    parser.add_argument("--checkpoints", default="100,250,500,1000,1500,2000,3000")
    parser.add_argument("--unet", choices=("sd15", "tiny"), default="sd15")
    parser.add_argument("--guidance-iterations", type=int, default=3)
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help="what to measure, comma separated (default: everything, %(default)s)",
    )
    parser.add_argument("--schedule-resolution", type=int, default=64)
    parser.add_argument("--schedule-steps", type=int, default=600)
    parser.add_argument("--schedule-grid", type=int, default=64)
    parser.add_argument("--schedule-rays", type=int, default=1024)
    parser.add_argument("--schedule-samples", type=int, default=64)
    parser.add_argument("--capture-steps", type=int, default=600, help="synthetic capture fits")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"the parts {','.join(QUICK_PARTS)} at small sizes, a few minutes on 2 CPU cores "
        "(overrides --parts and the schedule sizes)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.parts = ",".join(QUICK_PARTS)
        for name, value in QUICK_SIZES.items():
            setattr(args, name, value)
    return args


PARTS = (
    "reconstruction",
    "latent_vs_rgb",
    "guidance",
    "captures",
    "schedule",
    "zero_gradient_edit",
)
QUICK_PARTS = ("captures", "schedule", "zero_gradient_edit")
QUICK_SIZES = {
    "schedule_resolution": 32,
    "schedule_steps": 600,
    "schedule_grid": 32,
    "schedule_rays": 512,
    "schedule_samples": 48,
    "capture_steps": 300,
}
"""--quick: the built-in scene at 32 px, grid 8 -> 32, 600 steps (the first occupancy update,
where TensoRF's L1 weight halves, is at step 400), 512 rays x 48 samples per step; the synthetic
captures at 32x24 px, 300 steps (as tests/test_nerf_ray_space.py)."""


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reconstruction(args, device) -> tuple[dict, object, object]:
    import torch
    from tiny_models import tiny_sd_vae

    from engines.nerf.cameras import Cameras
    from engines.nerf.example import write_example
    from engines.nerf.field import FieldConfig
    from engines.nerf.fit import FitSettings, Fitter
    from engines.nerf.model import LatentNerf, NerfConfig
    from engines.nerf.scenes import load_scene
    from engines.nerf.views import Decoder

    folder = Path(tempfile.mkdtemp(prefix="zss-nerf-bench-")) / "example"
    made = time.perf_counter()
    write_example(folder, args.resolution)
    made = time.perf_counter() - made
    scene = load_scene(folder, args.resolution)
    images = torch.from_numpy(scene.images)
    latents = Decoder(tiny_sd_vae()).encode(images)
    torch.manual_seed(0)
    config = NerfConfig(
        scene.width,
        scene.height,
        samples=args.samples,
        field=FieldConfig(grid=args.grid, grid_start=max(16, args.grid // 4)),
    )
    cameras = Cameras.from_arrays(scene.c2w, scene.intrinsics, scene.width, scene.height)
    model = LatentNerf(config, cameras, scene.train, scene.test).to(device)
    settings = FitSettings(steps=args.steps, batch_rays=args.batch_rays)
    fitter = Fitter(model, images, latents, settings)
    checkpoints = {int(c) for c in args.checkpoints.split(",")}
    budget = args.minutes * 60
    curve, fitting = [], 0.0
    while fitter.step_index < args.steps and fitting < budget:
        began = time.perf_counter()
        fitter.step()
        sync(device)
        fitting += time.perf_counter() - began
        if fitter.step_index in checkpoints:
            score, _ = fitter.heldout()
            curve.append({"step": fitter.step_index, "seconds": round(fitting, 1), "psnr": score})
    score, _ = fitter.heldout()
    curve.append({"step": fitter.step_index, "seconds": round(fitting, 1), "psnr": score})
    best = max(point["psnr"] for point in curve)
    return (
        {
            "resolution": args.resolution,
            "example_generation_s": round(made, 1),
            "views_train": len(scene.train),
            "views_heldout": len(scene.test),
            "heldout_psnr_rgb_curve": curve,
            "heldout_psnr_rgb_final": score,
            "goal_28db_reached": best >= 28.0,
            "fit_seconds": round(fitting, 1),
        },
        model,
        fitter,
    )


def latent_vs_rgb(model, device, repeats: int = 3) -> dict:
    """One latent iteration (64x64 rays + refinement) against one RGB iteration at 512x512
    rays, forward and backward, on the same field and device."""

    from engines.nerf.cameras import Cameras
    from engines.nerf.model import LATENT, RGB

    cams = model.cameras[[model.train_views[0]]]
    big = Cameras(cams.c2w, cams.fx, cams.fy, cams.cx, cams.cy, cams.width, cams.height)
    rgb_cams = big.resized(512, 512)
    latent_cams = big.resized(64, 64)

    def rgb_iteration():
        origins, directions = rgb_cams.rays(0)
        total = 0.0
        for start in range(0, origins.shape[0], 65536):
            out = model.render_rays(
                origins[start : start + 65536],
                directions[start : start + 65536],
                (RGB,),
                jitter=True,
            )
            loss = out[RGB].square().mean()
            loss.backward()
            total += loss.item()
        return total

    def latent_iteration():
        origins, directions = latent_cams.rays(0)
        raw = model.render_rays(origins, directions, (LATENT,), jitter=True)[LATENT]
        refined = model.refiner(raw.T.reshape(1, -1, 64, 64))
        refined.square().mean().backward()

    def timed(fn) -> float:
        fn()  # warm up
        sync(device)
        began = time.perf_counter()
        for _ in range(repeats):
            fn()
        sync(device)
        return (time.perf_counter() - began) / repeats

    rgb, latent = timed(rgb_iteration), timed(latent_iteration)
    model.zero_grad(set_to_none=True)
    return {
        "rgb_iteration_512x512_rays_s": rgb,
        "latent_iteration_64x64_rays_s": latent,
        "rgb_over_latent_time_ratio": rgb / latent,
    }


def guidance(args, device) -> dict:
    import torch
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from tiny_models import tiny_clip_text_model, tiny_sd15_unet

    from engines.nerf.guidance import DiffusionGuide, Prompts, dds_gradient, sds_gradient

    if args.unet == "sd15":
        unet = UNet2DConditionModel(cross_attention_dim=768, sample_size=64)  # SD 1.5's config
        width = 768
    else:
        unet, width = tiny_sd15_unet(), 32
    unet = unet.to(device).eval()
    scheduler = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    guide = DiffusionGuide(unet, scheduler, tiny_clip_text_model(width).to(device), None)
    text = torch.randn(1, 77, width, device=device)
    prompts = Prompts(text, text + 0.1, text - 0.1)
    latent = torch.randn(1, 4, 64, 64, device=device)
    noise = torch.randn_like(latent)

    def run(fn) -> tuple[float, float | None]:
        fn()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        sync(device)
        began = time.perf_counter()
        for _ in range(args.guidance_iterations):
            fn()
        sync(device)
        seconds = (time.perf_counter() - began) / args.guidance_iterations
        peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
        return seconds, peak

    with torch.no_grad():
        dds, dds_peak = run(lambda: dds_gradient(guide, latent, latent, prompts, 500, noise))
        sds, sds_peak = run(lambda: sds_gradient(guide, latent, prompts, 500, noise))
    return {
        "unet": "SD 1.5 architecture, random weights" if args.unet == "sd15" else "tiny",
        "unet_parameters_m": round(sum(p.numel() for p in unet.parameters()) / 1e6, 1),
        "dds_iteration_s": dds,
        "sds_iteration_s": sds,
        "dds_over_sds_time_ratio": dds / sds,
        "dds_peak_gpu_mb": dds_peak,
        "sds_peak_gpu_mb": sds_peak,
    }


def fit_small(args, device, settings, scene=None):
    """A small fit of the built-in scene (RGB and latent heads, tiny random VAE): the model, its
    held-out PSNR (RGB head) and the scene."""
    import torch
    from tiny_models import tiny_sd_vae

    from engines.nerf.cameras import Cameras
    from engines.nerf.example import write_example
    from engines.nerf.field import FieldConfig
    from engines.nerf.fit import Fitter
    from engines.nerf.model import LatentNerf, NerfConfig
    from engines.nerf.scenes import load_scene
    from engines.nerf.views import Decoder

    size = args.schedule_resolution
    if scene is None:
        folder = Path(tempfile.mkdtemp(prefix="zss-nerf-bench-")) / "example"
        scene = load_scene(write_example(folder, size), size)
    images = torch.from_numpy(scene.images)
    torch.manual_seed(0)
    latents = Decoder(tiny_sd_vae()).encode(images)
    grid = args.schedule_grid
    config = NerfConfig(
        scene.width,
        scene.height,
        samples=args.schedule_samples,
        field=FieldConfig(grid=grid, grid_start=grid // 4),
    )
    cameras = Cameras.from_arrays(scene.c2w, scene.intrinsics, scene.width, scene.height)
    model = LatentNerf(config, cameras, scene.train, scene.test).to(device)
    fitter = Fitter(model, images, latents, settings)
    began = time.perf_counter()
    fitter.run()
    seconds = time.perf_counter() - began
    score, _ = fitter.heldout()
    return model, score, seconds, scene


DEFAULT_RUN = "TensoRF's published schedule (TV 0, L1 8e-5 -> 4e-5, lr reset), jittered: ours"
FORMER = dict(tv_weight=0.1, l1_weight=1e-4, l1_weight_rest=1e-4, lr_upsample_reset=False)


def schedule(args, device) -> dict:
    """Held-out PSNR of the same small fit of the built-in scene under TensoRF's published
    schedule (our default: TV 0 on an object-centric scene, L1 8e-5 then 4e-5 after the first
    occupancy update, learning rates reset after each upsample), with each piece put back to
    our former value in turn, with all of them, and without jittered samples."""
    from engines.nerf.fit import FitSettings

    steps = args.schedule_steps
    common = dict(steps=steps, batch_rays=args.schedule_rays, preview_every=steps)
    runs = {
        DEFAULT_RUN: FitSettings(**common),
        "but TV 0.1 (former)": FitSettings(**common, tv_weight=0.1),
        "but L1 1e-4 throughout (former)": FitSettings(
            **common, l1_weight=1e-4, l1_weight_rest=1e-4
        ),
        "but no lr reset after upsampling (former)": FitSettings(**common, lr_upsample_reset=False),
        "former: all three": FitSettings(**common, **FORMER),
        "TensoRF's, samples not jittered": FitSettings(**common, jitter=False),
    }
    out, scene = {}, None
    for name, settings in runs.items():
        _, score, seconds, scene = fit_small(args, device, settings, scene)
        out[name] = {"heldout_psnr_rgb": round(score, 2), "fit_seconds": round(seconds, 1)}
    ours = out[DEFAULT_RUN]["heldout_psnr_rgb"]
    return {
        "scene": "built-in example",
        "resolution": args.schedule_resolution,
        "views_heldout": len(scene.test),
        "steps": steps,
        "grid": f"{args.schedule_grid // 4} -> {args.schedule_grid}",
        "rays_per_step": args.schedule_rays,
        "samples_per_ray": args.schedule_samples,
        "runs": out,
        "heldout_psnr_rgb_builtin_scene": ours,
        "db_over_ours": {
            name: round(run["heldout_psnr_rgb"] - ours, 2)
            for name, run in out.items()
            if name != DEFAULT_RUN
        },
    }


CAPTURE_SIZE = (32, 24)
CAPTURE_FIT = dict(grid=32, samples=48, batch_rays=512, lr_grid=0.05, lr_network=3e-3)
"""The synthetic captures' fits: the tiny fit tests/test_nerf_ray_space.py holds to its floors
(RGB head only, grid 32 throughout), for --capture-steps."""


def captures(args, device) -> dict:
    """Held-out PSNR (RGB head) of a tiny fit of each synthetic capture (engines/nerf/
    synthetic.py, our ray tracer), in the ray space the poses choose: NDC for the
    forward-facing sweep, mip-NeRF 360's contraction for the unbounded ring."""
    import torch

    from engines.nerf.cameras import Cameras
    from engines.nerf.field import FieldConfig
    from engines.nerf.fit import FitSettings, Fitter
    from engines.nerf.model import LatentNerf, NerfConfig
    from engines.nerf.scenes import load_scene
    from engines.nerf.synthetic import FORWARD_FACING, UNBOUNDED, write_capture

    root = Path(tempfile.mkdtemp(prefix="zss-nerf-captures-"))
    out = {}
    for kind in (FORWARD_FACING, UNBOUNDED):
        write_capture(root / kind, kind, CAPTURE_SIZE)
        scene = load_scene(root / kind, CAPTURE_SIZE[0])
        torch.manual_seed(0)
        grid = CAPTURE_FIT["grid"]
        config = NerfConfig(
            scene.width,
            scene.height,
            samples=CAPTURE_FIT["samples"],
            space=scene.space,
            field=FieldConfig(grid=grid, grid_start=grid),
        )
        cameras = Cameras.from_arrays(scene.c2w, scene.intrinsics, scene.width, scene.height)
        model = LatentNerf(config, cameras, scene.train, scene.test).to(device)
        settings = FitSettings(
            steps=args.capture_steps,
            batch_rays=CAPTURE_FIT["batch_rays"],
            lr_grid=CAPTURE_FIT["lr_grid"],
            lr_network=CAPTURE_FIT["lr_network"],
            preview_every=args.capture_steps,
        )
        fitter = Fitter(model, torch.from_numpy(scene.images), None, settings)
        began = time.perf_counter()
        fitter.run()
        seconds = time.perf_counter() - began
        heldout, _ = fitter.heldout()
        trained, _ = fitter.heldout(scene.train)
        out[kind] = {
            "space": scene.space.kind,
            "views_train": len(scene.train),
            "views_heldout": len(scene.test),
            "heldout_psnr_rgb": round(heldout, 2),
            "train_psnr_rgb": round(trained, 2),
            "fit_seconds": round(seconds, 1),
        }
    return {
        "size": "x".join(map(str, CAPTURE_SIZE)),
        "steps": args.capture_steps,
        **{k: v for k, v in CAPTURE_FIT.items()},
        "captures": out,
    }


def zero_gradient_edit(args, device, steps: int = 50) -> dict:
    """An edit whose DDS gradient is exactly zero (the same prompt embedding for source and
    target) on a small fitted scene: how far it moves the field (must be 0) and whether the
    saved scene file is byte-identical."""
    import torch
    from diffusers import DDPMScheduler
    from tiny_models import tiny_clip_text_model, tiny_sd15_unet

    from engines.nerf.edit import Editor, EditSettings
    from engines.nerf.fit import FitSettings
    from engines.nerf.guidance import DiffusionGuide, Prompts
    from engines.nerf.scene_file import SceneHeader, scene_bytes

    small = argparse.Namespace(**{**vars(args), "schedule_steps": 100})
    began = time.perf_counter()
    model, _, _, _ = fit_small(small, device, FitSettings(steps=100, batch_rays=1024))
    model.update_occupancy()
    before = scene_bytes(model, SceneHeader())
    fitted = {name: p.detach().clone() for name, p in model.field.named_parameters()}
    scheduler = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    guide = DiffusionGuide(tiny_sd15_unet().to(device), scheduler, tiny_clip_text_model(32), None)
    text = torch.randn(1, 77, 32, device=device)
    settings = EditSettings(steps=steps, occupancy_every=20)
    Editor(model, guide, Prompts(text, text, text), settings).run()
    drift = max(
        float((p.detach() - fitted[name]).abs().max()) for name, p in model.field.named_parameters()
    )
    return {
        "scene": f"built-in example at {args.schedule_resolution} px, fitted 100 steps",
        "guide": "tiny random SD-1.5-structured UNet, the same embedding for source and target",
        "steps": steps,
        "seconds": round(time.perf_counter() - began, 1),
        "max_parameter_drift": drift,
        "scene_file_identical": scene_bytes(model, SceneHeader()) == before,
    }


def main(argv=None) -> int:
    import torch

    from engines.peak_memory import process_peak_rss_mb

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    started = time.perf_counter()
    report: dict = {
        "command": "python benchmarks/nerf.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "device": args.device if device.type != "cuda" else torch.cuda.get_device_name(device),
        "threads": args.threads,
        "torch": torch.__version__,
        "machine": platform.machine(),
    }
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if unknown := parts - set(PARTS):
        raise SystemExit(f"--parts: unknown {sorted(unknown)}; choose from {', '.join(PARTS)}")
    if parts & {"reconstruction", "latent_vs_rgb"}:
        recon, model, _ = reconstruction(args, device)
        report["reconstruction"] = recon
        if "latent_vs_rgb" in parts:
            report["latent_vs_rgb"] = latent_vs_rgb(model, device)
    if "guidance" in parts:
        report["guidance"] = guidance(args, device)
    if "captures" in parts:
        report["captures"] = captures(args, device)
    if "schedule" in parts:
        report["schedule"] = schedule(args, device)
    if "zero_gradient_edit" in parts:
        report["zero_gradient_edit"] = zero_gradient_edit(args, device)
    report["process_peak_rss_mb"] = process_peak_rss_mb()
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
