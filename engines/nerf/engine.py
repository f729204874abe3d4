"""NerfEditEngine: fit a NeRF in Stable Diffusion's latent space, edit it with Delta Denoising
Score, render scene files; long runs in a background thread with updates and Stop."""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
import torch

from ..base import Progress, no_progress
from ..errors import ModelUnavailable
from ..long_runs import Job, LongRunEngine, RunUpdate
from ..mp4 import mp4_bytes
from ..parts import LoadContext, Parts, not_available
from ..peak_memory import peak_memory, reset_peak
from .cameras import Cameras
from .capture_images import unit_float
from .edit import Editor, EditSettings
from .example import example_folder
from .field import FieldConfig
from .fit import FORWARD_FACING_TV, FitSettings, Fitter
from .loading import PARTS
from .metrics import direction_consistency, direction_similarity, image_batch, psnr, ssim
from .model import RGB, LatentNerf, NerfConfig
from .requests import EXAMPLE, EditRequest, ReconstructRequest, RenderRequest
from .results import NerfResult
from .scene_file import SceneHeader, load_scene_file, scene_bytes
from .scenes import load_scene
from .views import orbit_cameras, render_picture, side_by_side, to_uint8

EXAMPLE_SIZES = (256, 512)  # the built-in scene is rendered at the smallest at least asked
METRIC_VIEWS = 16  # orbit frames CLIP looks at
EDIT_METRICS = (
    "clip_direction_similarity",
    "clip_direction_consistency",
    "clip_target_score_original",
    "clip_target_score_edited",
)


CLIP_MODELS = {
    "clip": "OpenAI CLIP ViT-B/32 (nerf.clip)",
    "clip_l14": "OpenAI CLIP ViT-L/14 (nerf.clip_l14)",
}
"""The edit metrics' CLIP, by part (EditRequest.metric_model); peers report ViT-L/14."""


def metric_views(frames: list) -> list:
    """The orbit frames the edit metrics look at: all of them up to METRIC_VIEWS, else
    METRIC_VIEWS evenly spaced round the orbit (frame k * n / METRIC_VIEWS, rounded down)."""
    count = min(len(frames), METRIC_VIEWS)
    return [frames[k * len(frames) // count] for k in range(count)] if frames else []


def edit_metrics(clip, before: list, after: list, request: EditRequest) -> dict[str, Any]:
    """CLIP on the same views of the original and the edited scene: direction similarity and
    consistency (InstructPix2Pix / Instruct-NeRF2NeRF; the views are a closed orbit, so the
    last and the first are neighbours too), and the mean cosine of each view to the target
    prompt, before and after."""
    with torch.no_grad():
        original = clip.image_features(image_batch(before).to(clip.device))
        edited = clip.image_features(image_batch(after).to(clip.device))
        texts = clip.encode_prompts([request.source, request.target])
    return {
        "clip_direction_similarity": direction_similarity(original, edited, texts[1] - texts[0]),
        "clip_direction_consistency": direction_consistency(original, edited, closed=True),
        "clip_target_score_original": float((original @ texts[1]).mean()),
        "clip_target_score_edited": float((edited @ texts[1]).mean()),
        "clip_views": int(original.shape[0]),
    }


class NerfEditEngine(LongRunEngine):
    """ED-NeRF-style: a TensoRF field rendering SD latents, refined, edited with DDS."""

    name = "nerf"
    tasks = {
        ReconstructRequest: "reconstruct",
        EditRequest: "edit",
        RenderRequest: "render",
    }

    def load(self, context: LoadContext) -> Parts:
        # nothing is loaded up front: rendering the RGB head needs no model at all
        return context.lazy(PARTS)

    # -- long runs ---------------------------------------------------------------------------

    def reconstruct(self, request: ReconstructRequest, progress: Progress = no_progress):
        return self.follow(request, progress)

    def edit(self, request: EditRequest, progress: Progress = no_progress):
        return self.follow(request, progress)

    def prepare(self, request: ReconstructRequest | EditRequest) -> Job:
        """Read the scene now (bad input fails in `start`, before any model loads)."""
        if isinstance(request, ReconstructRequest):
            scene = self._read_scene(request)
            return lambda parts, emit, stop: self._reconstruct(parts, request, scene, emit, stop)
        loaded = load_scene_file(request.scene)
        return lambda parts, emit, stop: self._edit(parts, request, loaded, emit, stop)

    # -- reconstruct ---------------------------------------------------------------------------

    @staticmethod
    def _read_scene(request: ReconstructRequest):
        if request.scene == EXAMPLE:
            size = min(
                (s for s in EXAMPLE_SIZES if s >= request.resolution), default=EXAMPLE_SIZES[-1]
            )
            path = example_folder(size)
        else:
            path = request.scene
        return load_scene(path, request.resolution, request.background, request.space)

    def _reconstruct(
        self, parts: Parts, request: ReconstructRequest, scene, emit, stop
    ) -> NerfResult:
        device = self.manager.device.torch_device
        reset_peak(device)
        emit(RunUpdate("latents", 0, request.steps, "Encoding the views with the VAE"))
        decoder = parts.get("vae")
        images = torch.from_numpy(scene.images)
        latents = decoder.encode(images)
        torch.manual_seed(request.seed)
        config = NerfConfig(
            width=scene.width,
            height=scene.height,
            samples=request.samples,
            background=scene.background,
            space=scene.space,
            field=FieldConfig(grid=request.grid, grid_start=max(16, request.grid // 4)),
        )
        cameras = Cameras.from_arrays(scene.c2w, scene.intrinsics, scene.width, scene.height)
        model = LatentNerf(config, cameras, scene.train, scene.test).to(device)
        settings = FitSettings(
            tv_weight=FORWARD_FACING_TV if scene.space.kind == "ndc" else 0.0,
            steps=request.steps,
            batch_rays=request.batch_rays,
            preview_every=request.preview_every,
            seed=request.seed,
        )
        fitter = Fitter(model, images, latents, settings)

        def preview(image):
            return to_uint8(image.permute(2, 0, 1))

        report = fitter.run(emit, stop, preview)
        emit(RunUpdate("measure", report.steps_done, request.steps, "Measuring held-out views"))
        metrics, shown = self._heldout_metrics(model, decoder, images, latents)
        metrics.update(_run_figures(report, device))
        metrics.update(views_train=len(scene.train), views_heldout=len(scene.test))
        metrics.update(resolution=f"{scene.width}x{scene.height}")
        metrics["latent_size"] = "x".join(str(s) for s in config.latent_size)
        sources = parts.sources("vae")
        source = {
            "format": scene.source_format,
            "convention": scene.convention,
            "scene": request.scene,
            "views": len(scene.images),
            "space": scene.space.kind,
        }
        data = scene_bytes(model, SceneHeader(models=sources, source=source))
        return NerfResult(
            recipe=self.recipe(request, sources, request.seed),
            metrics=metrics,
            task="reconstruct",
            scene=data,
            preview=shown,
            history=report.history,
            steps_done=report.steps_done,
            cancelled=report.steps_done < request.steps,
            notes=scene.notes,
        )

    @staticmethod
    def _heldout_metrics(model, decoder, images, latents) -> tuple[dict[str, Any], Any]:
        """PSNR/SSIM of the RGB head and of the VAE-decoded latent render on held-out views,
        and the VAE's own round trip on them (the ceiling the latent path can reach)."""
        scores: dict[str, list[float]] = {}
        shown = None
        with torch.no_grad():
            for view in model.test_views:
                truth = to_uint8(unit_float(images[view]).permute(2, 0, 1))
                rgb = to_uint8(model.render_view(model.cameras, view, RGB))
                decoded = to_uint8(decoder.decode(model.latent(model.cameras, view))[0])
                ceiling = to_uint8(decoder.decode(latents[view : view + 1])[0])
                for name, image in (("rgb", rgb), ("latent", decoded), ("vae_roundtrip", ceiling)):
                    scores.setdefault(f"heldout_psnr_{name}", []).append(psnr(image, truth))
                    scores.setdefault(f"heldout_ssim_{name}", []).append(ssim(image, truth))
                shown = shown if shown is not None else np.concatenate([truth, rgb, decoded], 1)
        return {k: float(np.mean(v)) for k, v in scores.items()}, shown

    # -- edit ------------------------------------------------------------------------------------

    def _edit(self, parts: Parts, request: EditRequest, loaded, emit, stop) -> NerfResult:
        model, header = loaded
        device = self.manager.device.torch_device
        reset_peak(device)
        emit(RunUpdate("latents", 0, request.steps, "Loading the VAE and the UNet"))
        decoder = parts.get("vae")
        guide = parts.get("diffusion")
        model = model.to(device)
        original = copy.deepcopy(model)
        settings = EditSettings(
            mode=request.mode,
            steps=request.steps,
            guidance_scale=request.guidance_scale,
            weighting=request.weighting,
            lr_grid=request.lr,
            lr_network=request.lr / 10,
            t_min=request.t_min,
            t_max=request.t_max,
            switch_every=request.switch_every,
            preview_every=request.preview_every,
            seed=request.seed,
        )
        torch.manual_seed(request.seed)
        editor = Editor(model, guide, guide.prompts(request.source, request.target), settings)
        first = model.train_views[0]

        def preview(step: int):
            with torch.no_grad():
                before = render_picture(original, original.cameras, first, decoder)
                after = render_picture(model, model.cameras, first, decoder)
            return side_by_side(before, after)

        report = editor.run(emit, stop, preview)
        emit(RunUpdate("measure", report.steps_done, request.steps, "Orbit video and metrics"))
        video, frames_before, frames_after = self._orbit(
            [original, model], decoder, request.frames, orbit_fps(request.frames)
        )
        metrics, notes = self._edit_metrics(parts, frames_before, frames_after, request)
        metrics.update(_run_figures(report, device))
        metrics["mode"] = request.mode
        metrics["guidance_scale"] = request.guidance_scale
        metrics["weighting"] = f"w(t) = {request.weighting}"
        header.edits.append(
            {"source": request.source, "target": request.target, "mode": request.mode}
        )
        header.models.update(parts.sources("vae", "diffusion"))
        sources = parts.sources("vae", "diffusion", request.metric_model)
        return NerfResult(
            recipe=self.recipe(request, sources, request.seed),
            metrics=metrics,
            task="edit",
            scene=scene_bytes(model, header),
            video=video,
            still=frames_after[0],
            preview=side_by_side(frames_before[0], frames_after[0]),
            history=report.history,
            steps_done=report.steps_done,
            cancelled=report.steps_done < request.steps,
            orbit_original=frames_before,
            orbit_edited=frames_after,
            notes=notes,
        )

    def _edit_metrics(
        self, parts, before: list, after: list, request: EditRequest
    ) -> tuple[dict, list[str]]:
        """The figures of the request's metric CLIP (`CLIP_MODELS`, named in `clip_model`) on
        the orbit views (`metric_views`) before and after the edit, and notes. CLIP is only
        needed for them, so without it the edit is made, each figure says which model it
        lacks and a note says how to get it."""
        named = {"clip_model": CLIP_MODELS[request.metric_model]}
        try:
            clip = parts.get(request.metric_model)
        except ModelUnavailable as err:
            missing = not_available(err)
            return {**named, **{name: missing for name in EDIT_METRICS}}, [f"Edit metrics: {err}"]
        figures = edit_metrics(clip, metric_views(before), metric_views(after), request)
        return {**named, **figures}, []

    # -- render ----------------------------------------------------------------------------------

    def _orbit(self, models: list, decoder, frames: int, fps: int):
        """An mp4 of the models side by side on one orbit, and each one's frames."""
        azimuths = [360.0 * k / frames for k in range(frames)]
        per_model = []
        with torch.no_grad():
            for model in models:
                cams = orbit_cameras(model, azimuths)
                per_model.append([render_picture(model, cams, i, decoder) for i in range(frames)])
        joined = per_model[0]
        for more in per_model[1:]:
            joined = [side_by_side(a, b) for a, b in zip(joined, more, strict=True)]
        return mp4_bytes(joined, fps), per_model[0], per_model[-1]

    def render(self, request: RenderRequest, progress: Progress = no_progress) -> NerfResult:
        scenes = [load_scene_file(request.scene)]
        if request.compare is not None:
            scenes.append(load_scene_file(request.compare))
        with self.manager.use(self.name) as parts:
            device = self.manager.device.torch_device
            decoder = parts.get("vae") if request.decode == "latent" else None
            models = [model.to(device) for model, _ in scenes]
            progress(0.05, "Rendering the orbit")
            started = time.perf_counter()
            video, _, _ = self._orbit(models, decoder, request.frames, request.fps)
            seconds = time.perf_counter() - started
            progress(0.9, "Rendering the still")
            stills = []
            with torch.no_grad():
                for model in models:
                    cams = orbit_cameras(
                        model, [request.azimuth], request.elevation, request.distance
                    )
                    stills.append(render_picture(model, cams, 0, decoder))
            sources = parts.sources("vae") if decoder is not None else {}
        still = stills[0] if len(stills) == 1 else side_by_side(*stills)
        notes = []
        if request.decode == "rgb" and any(header.edits for _, header in scenes):
            notes.append("The RGB head shows the fitted scene: decode the latent to see the edit.")
        progress(1.0, "Done")
        return NerfResult(
            recipe=self.recipe(request, sources, None),
            metrics={
                "frames": request.frames,
                "render_seconds": seconds,
                "seconds_per_frame": seconds / request.frames,
                "edits": [e for _, header in scenes for e in header.edits],
            },
            task="render",
            video=video,
            still=still,
            notes=notes,
        )


def _run_figures(report, device) -> dict[str, Any]:
    steps = sorted(report.step_seconds)
    figures: dict[str, Any] = {
        "steps_done": report.steps_done,
        "run_seconds": round(report.seconds, 3),
        "median_step_seconds": steps[len(steps) // 2] if steps else None,
    }
    return {**figures, **peak_memory(device)}


EDIT_ORBIT_SECONDS = 3.0
"""An edit's orbit video lasts about this long, however few its frames (a player shows a
clip under a second as 0:00 / 0:00)."""


def orbit_fps(frames: int) -> int:
    """The frame rate that plays `frames` in about EDIT_ORBIT_SECONDS (1 to 24 fps)."""
    return max(1, min(24, round(frames / EDIT_ORBIT_SECONDS)))
