"""The layout-to-image engine: prompt + phrase boxes -> image, overlay, heatmaps, layout score."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import torch

from ..base import Engine, Progress, no_progress
from ..detection import load_detector
from ..parts import LoadContext, Parts
from ..phrases import box_token_indices
from .attention import LAYER_MAPS, recording_attention
from .guidance import GuidanceSettings, LayoutGuidance
from .loading import backbone_loader
from .losses import LossWeights
from .render import draw_boxes, heatmap, to_pil
from .requests import BACKBONES, LayoutRequest
from .results import LayoutResult
from .sampler import sample
from .scoring import BoxScore, match_boxes, summarize

DEFAULT_BACKBONE = "sd15"


class LayoutEngine(Engine):
    """BACON-style layout-to-image on Stable Diffusion: each box's phrase attention is pulled
    into its box by latent optimisation in the early denoising steps."""

    name = "layout"
    tasks = {LayoutRequest: "generate"}

    def load(self, context: LoadContext) -> Parts:
        loaders = {name: backbone_loader(name) for name in BACKBONES}
        parts = context.lazy({**loaders, "detector": load_detector})
        parts.get(DEFAULT_BACKBONE)  # the default loads now; another one on request
        return parts

    @staticmethod
    def backbone(parts: Parts, name: str):
        """The pipeline `name`, releasing any other backbone first: one is resident."""
        for other in BACKBONES:
            if other != name and parts.is_loaded(other):
                parts.release(other)
        return parts.get(name)

    def generate(self, request: LayoutRequest, progress: Progress | None = None) -> LayoutResult:
        progress = progress or no_progress
        boxes = request.pixel_boxes()
        scoring = request.score and bool(boxes)
        with self.manager.use(self.name) as parts:
            detector, score_note = parts.optional("detector") if scoring else (None, "")
            pipe = self.backbone(parts, request.backbone)  # says "loading" when it loads
            sources = parts.sources(request.backbone, *(["detector"] if detector else []))
            token_indices = box_token_indices(
                pipe.tokenizer, request.prompt, [box.phrase for box in boxes]
            )

            guidance = None
            if request.guided:
                latent_hw = (
                    request.height // pipe.vae_scale_factor,
                    request.width // pipe.vae_scale_factor,
                )
                guidance = LayoutGuidance(
                    pipe.unet,
                    pipe.scheduler,
                    LAYER_MAPS[request.backbone],
                    token_indices,
                    [box.coords() for box in boxes],
                    (request.height, request.width),
                    latent_hw,
                    GuidanceSettings(
                        strength=request.strength,
                        iterations=request.iterations,
                        loss_threshold=request.loss_threshold,
                        weights=LossWeights(
                            request.weight_inside, request.weight_outside, request.weight_boundary
                        ),
                        self_attention=request.self_attention,
                    ),
                )
            started = time.perf_counter()
            generator = torch.Generator("cpu").manual_seed(request.seed)
            recording = (
                recording_attention(pipe.unet, guidance.store, LAYER_MAPS[request.backbone])
                if guidance
                else contextlib.nullcontext()
            )
            with recording:
                out = sample(
                    pipe,
                    request.prompt,
                    request.negative_prompt,
                    request.height,
                    request.width,
                    request.steps,
                    request.guidance_scale,
                    generator,
                    guidance=guidance,
                    guided_steps=request.guided_steps if guidance else 0,
                    progress=lambda f, what: progress(0.9 * f, what),
                )
            seconds = time.perf_counter() - started

            image = to_pil(out.image)
            scores: list[BoxScore] = []
            if detector is not None:
                progress(0.92, "scoring the layout with the detector")
                found = detector.detect_phrases(image, [box.phrase for box in boxes])
                scores = match_boxes(boxes, found)

        heatmaps = []
        if guidance is not None and guidance.last_maps is not None:
            maps = guidance.last_maps.cpu().numpy()
            for index, box in enumerate(boxes):
                picture = heatmap(image, maps[guidance.membership[index]], box, index)
                heatmaps.append((picture, f"{index + 1}: {box.phrase}"))
        metrics = _metrics(seconds, guidance, scores, request, out.nsfw, score_note)
        progress(1.0, "done")
        return LayoutResult(
            recipe=self.recipe(request, sources, request.seed),
            metrics=metrics,
            image=image,
            overlay=draw_boxes(image, boxes) if boxes else image,
            heatmaps=heatmaps,
            boxes=boxes,
            scores=scores,
        )


def _metrics(
    seconds, guidance, scores, request: LayoutRequest, nsfw: bool, score_note: str = ""
) -> dict[str, Any]:
    metrics: dict[str, Any] = {"generation_s": seconds}
    if guidance is not None:
        losses = [loss for report in guidance.reports for loss in report.losses]
        metrics.update(
            guided_steps=len(guidance.reports),
            guidance_forwards=len(losses),
            latent_updates=sum(report.updates for report in guidance.reports),
            layout_loss_first=losses[0] if losses else None,
            layout_loss_last=losses[-1] if losses else None,
            nan_skipped_steps=sum(report.nan_skipped for report in guidance.reports),
        )
    else:
        metrics["guided_steps"] = 0
    if scores:
        metrics.update(summarize(scores))
    elif request.boxes:
        metrics["layout_score"] = score_note or "off"
    if nsfw:
        metrics["nsfw_flagged"] = True
    return metrics
