"""The NeRF editing protocol (docs/nerf.md, Evaluation): our set of (scene, source prompt,
target prompt) edits (`nerf_edits.json`); each scene fitted once, then edited with Delta
Denoising Score (ours, ED-NeRF's) and with SDS (its baseline) at the DDS notebook's and at
DreamFusion's settings, on the same seeds; measured by the
engine on the same orbit views of the unedited and the edited scene: CLIP direction similarity,
direction consistency between neighbouring views, CLIP score to the target text; time and peak
memory; the loss curve of every edit."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..hashing import file_sha256
from ..outputs import png_bytes, write_bytes
from . import plots
from .layout import seeds
from .report import Report, mean_or_note
from .store import ItemStore, item_key

EDIT_SET = Path(__file__).with_name("nerf_edits.json")
METRIC_MODELS = ("clip", "clip_l14")  # engines.nerf.requests.METRIC_MODELS (no import at parse)
EXAMPLE = "example"
MODES = ("dds", "sds", "sds-dreamfusion")
METHODS = {
    "dds": "ours, DDS (ED-NeRF; CFG 7.5, w(t) = 1)",
    "sds": "SDS at the DDS notebook's settings (CFG 7.5, w(t) = 1)",
    "sds-dreamfusion": "SDS at DreamFusion / threestudio settings (CFG 100, w(t) = 1 - alpha_bar_t)",
}
METHOD_SETTINGS = {
    "dds": {"mode": "dds", "guidance_scale": 7.5, "weighting": "1"},
    "sds": {"mode": "sds", "guidance_scale": 7.5, "weighting": "1"},
    # DreamFusion and threestudio draw t from [0.02, 0.98] of the schedule
    "sds-dreamfusion": {
        "mode": "sds", "guidance_scale": 100.0, "weighting": "1 - alpha_bar",
        "t_min": 20, "t_max": 980,
    },
}  # fmt: skip
"""Each compared method as EditRequest settings; the rest are the engine's defaults."""
FIT_SEED = 0
"""Each scene is fitted once, with this seed; the edits' seeds vary."""
FIT_FIGURES = (
    "heldout_psnr_rgb", "heldout_psnr_latent", "heldout_ssim_latent",
    "heldout_psnr_vae_roundtrip", "steps_done", "run_seconds", "resolution",
)  # fmt: skip
EDIT_FIGURES = (
    "clip_direction_similarity", "clip_direction_consistency", "clip_target_score_original",
    "clip_target_score_edited", "clip_views", "clip_model", "steps_done", "run_seconds",
    "median_step_seconds", "peak_memory_mb",
)  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("nerf")
    group.add_argument(
        "--nerf-modes",
        default=",".join(MODES),
        help="editing losses compared, comma separated (default %(default)s)",
    )
    group.add_argument(
        "--nerf-resolution",
        type=int,
        default=None,
        help="fitting resolution, px (default: 512, SD 1.5's training resolution, on a GPU; "
        "256 on a CPU)",
    )
    group.add_argument("--nerf-fit-steps", type=int, default=3000, help="fitting iterations")
    group.add_argument("--nerf-grid", type=int, default=None, help="grid (default: the engine's)")
    group.add_argument(
        "--nerf-samples", type=int, default=None, help="samples per ray (default: the engine's)"
    )
    group.add_argument(
        "--nerf-batch-rays", type=int, default=None, help="rays per step (default: the engine's)"
    )
    group.add_argument("--nerf-edit-steps", type=int, default=300, help="edit iterations")
    group.add_argument(
        "--nerf-frames", type=int, default=24, help="orbit views the edit is measured on"
    )
    group.add_argument(
        "--nerf-metric-model",
        default="clip",
        choices=METRIC_MODELS,
        help="the CLIP the edit metrics use: clip (ViT-B/32, the default) or clip_l14 "
        "(ViT-L/14, as InstructPix2Pix and its peers report)",
    )


def load_edits(path: Path) -> list[dict[str, Any]]:
    """The edit set: {"edits": [{"id", "scene", "source", "target"}]}; `scene` is 'example'
    or a scene folder, zip or fitted .nerf file, relative to the set's file."""
    if path.is_dir():
        path = path / EDIT_SET.name
    try:
        edits = json.loads(path.read_text("utf-8"))["edits"]
        for entry in edits:
            entry["id"], entry["scene"], entry["source"], entry["target"]  # noqa: B018
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(
            f"--data {path}: expected a JSON edit set like {EDIT_SET.name} ({err})."
        ) from err
    for entry in edits:
        if entry["scene"] != EXAMPLE:
            scene = (path.parent / entry["scene"]).resolve()
            if not scene.exists():
                raise InputError(f"--data {path}: edit {entry['id']!r}: no scene at {scene}.")
            entry["scene"] = str(scene)
    return edits


def _modes(args: argparse.Namespace) -> list[str]:
    modes = [m.strip() for m in args.nerf_modes.split(",") if m.strip()]
    if not modes or any(m not in MODES for m in modes):
        raise InputError(f"--nerf-modes: choose from {', '.join(MODES)}.")
    return modes


def working_resolution(args: argparse.Namespace) -> int:
    """--nerf-resolution, else the request's default (512) on an accelerator and its CPU-sized
    value (256) on a CPU."""
    from ..device import choose_device
    from ..nerf import ReconstructRequest

    if args.nerf_resolution is not None:
        return args.nerf_resolution
    accelerator = choose_device(getattr(args, "device", "auto")).is_accelerator
    return ReconstructRequest.sized_defaults(accelerator)["resolution"]


def plan(args: argparse.Namespace) -> list[dict[str, Any]]:
    from ..nerf import EditRequest, ReconstructRequest

    args.nerf_resolution = working_resolution(args)
    items = []
    for entry in load_edits(Path(args.data) if args.data else EDIT_SET):
        scene = entry["scene"]
        fitted = scene.endswith(".nerf")
        fit = None
        if not fitted:
            fit = {
                "resolution": args.nerf_resolution,
                "steps": args.nerf_fit_steps,
                "grid": args.nerf_grid,
                "samples": args.nerf_samples,
                "batch_rays": args.nerf_batch_rays,
                "seed": FIT_SEED,
            }
            ReconstructRequest(scene=scene, **_given(fit)).validate()
        for seed in seeds(args):
            for mode in _modes(args):
                item = {
                    "id": f"{entry['id']}-s{seed}-{mode}",
                    "edit_id": entry["id"],
                    "scene": scene,
                    "scene_sha256": _digest(scene) if fitted else None,
                    "fit": fit,
                    "source": entry["source"],
                    "target": entry["target"],
                    "mode": mode,
                    "seed": seed,
                    "steps": args.nerf_edit_steps,
                    "frames": args.nerf_frames,
                    "metric_model": _metric_model(args),
                }
                _edit_request(item, "scene.nerf", EditRequest).validate()
                items.append(item)
    return items


def _metric_model(args: argparse.Namespace) -> str:
    return getattr(args, "nerf_metric_model", "clip")


def _given(options: dict[str, Any]) -> dict[str, Any]:
    """The options set; None leaves the engine's default."""
    return {k: v for k, v in options.items() if v is not None}


def _digest(path: str) -> str:
    return file_sha256(path)[:16]


def _edit_request(item: dict[str, Any], scene_file: str, request_type):
    return request_type(
        scene=scene_file,
        source=item["source"],
        target=item["target"],
        **METHOD_SETTINGS[item["mode"]],
        steps=item["steps"],
        frames=item["frames"],
        metric_model=item.get("metric_model", "clip"),
        seed=item["seed"],
        preview_every=item["steps"],
    )


def fitted_scene(engine, item: dict[str, Any], folder: Path) -> tuple[Path, dict[str, Any]]:
    """The item's scene file and its fit's figures: a given .nerf file as it is, otherwise the
    scene fitted once into `folder` (`<output>/scenes/`) and read back by every later edit and
    rerun."""
    from ..nerf import ReconstructRequest

    if item["fit"] is None:
        return Path(item["scene"]), {"scene_file": Path(item["scene"]).name}
    name = "example" if item["scene"] == EXAMPLE else Path(item["scene"]).stem
    key = item_key({"id": name, "scene": item["scene"], **item["fit"]})
    scene_file, figures_file = folder / f"{key}.nerf", folder / f"{key}.json"
    if scene_file.is_file() and figures_file.is_file():
        try:
            return scene_file, json.loads(figures_file.read_text("utf-8"))
        except ValueError:
            pass  # cut short: fit again
    result = engine.run(ReconstructRequest(scene=item["scene"], **_given(item["fit"])))
    figures = {k: result.metrics[k] for k in FIT_FIGURES if k in result.metrics}
    figures["scene"] = name
    write_bytes(scene_file, result.scene)
    write_bytes(figures_file, json.dumps(figures, indent=2).encode("utf-8"))
    return scene_file, figures


def evaluator(studio, args: argparse.Namespace):
    from ..nerf import EditRequest
    from ..nerf.engine import metric_views

    engine = studio.engine("nerf")

    def evaluate(item: dict[str, Any], store: ItemStore) -> dict[str, Any]:
        scene_file, fit = fitted_scene(engine, item, store.folder.parent / "scenes")
        result = engine.run(_edit_request(item, str(scene_file), EditRequest))
        folder = store.artifacts(item)
        write_bytes(folder / "orbit.mp4", result.video)  # original | edited
        views = zip(
            metric_views(result.orbit_original), metric_views(result.orbit_edited), strict=True
        )
        for index, (before, after) in enumerate(views):
            write_bytes(folder / f"original-{index:02d}.png", png_bytes(before))
            write_bytes(folder / f"edited-{index:02d}.png", png_bytes(after))
        return {
            "metrics": {k: result.metrics[k] for k in EDIT_FIGURES if k in result.metrics},
            "history": [
                {"step": h["step"], "guidance": h["guidance"], "gradient_norm": h["gradient_norm"]}
                for h in result.history
            ],
            "fit": fit,
            "models": result.recipe.models,
        }

    return evaluate


COLUMNS = [
    "method", "edits", "clip_direction_similarity", "clip_direction_consistency",
    "clip_target_score", "edit_s", "step_s", "peak_memory_mb",
]  # fmt: skip


def summarise(records: list[dict[str, Any]], args: argparse.Namespace) -> Report:
    from ..nerf.engine import CLIP_MODELS

    metrics = [r["metrics"] for r in records]
    rows = []
    if records:
        rows.append(
            {
                "method": "unedited scene (same views)",
                "edits": len(records),
                "clip_target_score": mean_or_note(m["clip_target_score_original"] for m in metrics),
            }
        )
    for mode in MODES:
        chosen = [r["metrics"] for r in records if r["item"]["mode"] == mode]
        if not chosen:
            continue
        rows.append(
            {
                "method": METHODS[mode],
                "edits": len(chosen),
                "clip_direction_similarity": mean_or_note(
                    m["clip_direction_similarity"] for m in chosen
                ),
                "clip_direction_consistency": mean_or_note(
                    m["clip_direction_consistency"] for m in chosen
                ),
                "clip_target_score": mean_or_note(m["clip_target_score_edited"] for m in chosen),
                "edit_s": mean_or_note(m["run_seconds"] for m in chosen),
                "step_s": mean_or_note(m["median_step_seconds"] for m in chosen),
                "peak_memory_mb": mean_or_note(m.get("peak_memory_mb") for m in chosen),
            }
        )
    similarity = {
        r["item"]["id"]: r["metrics"]["clip_direction_similarity"]
        for r in records
        if isinstance(r["metrics"]["clip_direction_similarity"], (int, float))
    }
    curves = {r["item"]["id"]: [(h["step"], h["guidance"]) for h in r["history"]] for r in records}
    figures = {
        "direction_similarity.png": plots.bars(
            similarity, "CLIP direction similarity", "Per edit: image change vs text change"
        ),
        "edit_losses.png": plots.curves(
            curves, "edit step", "guidance loss (z * grad).sum() / hw", "Edit loss curves"
        ),
    }
    return Report(
        capability="nerf",
        title="NeRF editing: DDS (ED-NeRF) against SDS on the same scenes and seeds",
        protocol=(
            "Each scene of the set fitted once (latent NeRF, seed 0); each (source, target) "
            "edit run with Delta Denoising Score (ours, as ED-NeRF) and with SDS at two "
            "settings, the DDS notebook's (CFG 7.5, w(t) = 1) and DreamFusion's / "
            "threestudio's (CFG 100, w(t) = 1 - alpha_bar_t, t in [20, 980)), on the same "
            "seeds and steps. Measured by the engine on the same orbit views of the unedited "
            "and the edited scene (the training cameras' radius and mean elevation, VAE-decoded) "
            f"with {CLIP_MODELS[_metric_model(args)]}: direction similarity "
            "cos(E_I(edited) - E_I(original), E_T(target) - E_T(source)) and direction "
            "consistency between neighbouring views of the closed orbit, the last and the "
            "first included (InstructPix2Pix / Instruct-NeRF2NeRF), and the CLIP score (mean "
            "cosine) of the views to the target text, unedited against edited. Time and peak "
            "memory of each edit."
        ),
        columns=COLUMNS,
        rows=rows,
        records=records,
        settings={
            "data": str(args.data or EDIT_SET),
            "seeds": args.seeds,
            "modes": args.nerf_modes,
            "resolution": args.nerf_resolution,
            "fit_steps": args.nerf_fit_steps,
            "grid": args.nerf_grid,
            "samples": args.nerf_samples,
            "batch_rays": args.nerf_batch_rays,
            "edit_steps": args.nerf_edit_steps,
            "frames": args.nerf_frames,
            "metric_model": CLIP_MODELS[_metric_model(args)],
        },
        plots=figures,
        notes=[
            *_fit_notes(records),
            "peak_memory_mb: on CUDA the peak GPU memory allocated during the edit; on a CPU "
            "the process's peak resident memory so far (it includes the fit).",
            "Each edit's orbit (original | edited) and the views CLIP measured are in "
            "items/<item>/; the fitted scenes in scenes/.",
        ],
    )


def _fit_notes(records: list[dict[str, Any]]) -> list[str]:
    """One line per fitted scene: its held-out reconstruction figures, from the fit's run."""
    notes, seen = [], set()
    for record in records:
        fit = record["fit"]
        if "heldout_psnr_rgb" not in fit:
            if fit.get("scene_file") and fit["scene_file"] not in seen:
                seen.add(fit["scene_file"])
                notes.append(f"Scene file {fit['scene_file']}: given, edited as it is.")
            continue
        key = json.dumps(fit, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        notes.append(
            f"Scene {fit['scene']} fitted at {fit.get('resolution')} for {fit.get('steps_done')} "
            f"steps ({fit.get('run_seconds', 0):.1f} s): held-out PSNR of the RGB head "
            f"{fit['heldout_psnr_rgb']:.2f} dB, of the decoded latent "
            f"{fit.get('heldout_psnr_latent', float('nan')):.2f} dB (the VAE's own round trip: "
            f"{fit.get('heldout_psnr_vae_roundtrip', float('nan')):.2f} dB)."
        )
    return notes
