"""The layout-to-image engine: prompt + phrase boxes -> image, overlay, heatmaps, layout score."""

from __future__ import annotations

import contextlib
import dataclasses
import re
import time
from dataclasses import dataclass, field
from typing import Any

from ..base import Engine, Progress, Result, metrics_json, no_progress
from ..manager import LazyComponents, LoadContext
from ..outputs import png_bytes
from .attention import LAYER_MAPS, recording_attention
from .backbones import backbone_loader
from .detector import load_detector
from .losses import LossWeights
from .render import draw_boxes, heatmap, to_pil
from .requests import BACKBONES, LayoutRequest, PhraseBox
from .scoring import BoxScore, match_boxes, summarize
from .tokens import box_token_indices

DEFAULT_BACKBONE = "sd15"


@dataclass
class LayoutResult(Result):
    image: Any = None  # PIL.Image
    overlay: Any = None  # the image with the boxes drawn
    heatmaps: list[tuple[Any, str]] = field(default_factory=list)  # (PIL.Image, caption)
    boxes: list[PhraseBox] = field(default_factory=list)  # in pixels
    scores: list[BoxScore] = field(default_factory=list)

    def output_summary(self) -> dict[str, Any]:
        return {
            "image": f"{self.image.width}x{self.image.height}" if self.image else None,
            "boxes": len(self.boxes),
            "heatmaps": len(self.heatmaps),
            "scores": [dataclasses.asdict(s) for s in self.scores],
        }

    def files(self) -> dict[str, bytes]:
        files = {}
        for name, picture in (("image.png", self.image), ("overlay.png", self.overlay)):
            if picture is not None:
                files[name] = png_bytes(picture)
        for index, ((picture, _), box) in enumerate(zip(self.heatmaps, self.boxes, strict=True), 1):
            slug = re.sub(r"[^a-z0-9]+", "-", box.phrase.lower()).strip("-") or "box"
            files[f"heatmap-{index}-{slug}.png"] = png_bytes(picture)
        if self.scores:
            rows = [dataclasses.asdict(s) for s in self.scores]
            files["scores.json"] = metrics_json({"boxes": rows, **self.metrics}).encode("utf-8")
        return files


class LayoutEngine(Engine):
    """BACON-style layout-to-image on Stable Diffusion: each box's phrase attention is pulled
    into its box by latent optimisation in the early denoising steps."""

    name = "layout"
    tasks = {LayoutRequest: "generate"}

    def load(self, context: LoadContext) -> dict[str, Any]:
        loaders = {name: backbone_loader(name) for name in BACKBONES}
        parts = context.lazy({**loaders, "detector": load_detector})
        parts.get(DEFAULT_BACKBONE)  # the default loads now; another one on request
        return {"parts": parts}

    @staticmethod
    def backbone(parts: LazyComponents, name: str):
        """The pipeline `name`, releasing any other backbone first: one is resident."""
        for other in BACKBONES:
            if other != name and parts.is_loaded(other):
                parts.release(other)
        return parts.get(name)

    def generate(self, request: LayoutRequest, progress: Progress | None = None) -> LayoutResult:
        import torch

        from .guidance import GuidanceSettings, LayoutGuidance
        from .sampler import sample

        progress = progress or no_progress
        request.validate()
        boxes = request.pixel_boxes()
        scoring = request.score and bool(boxes)
        with self.manager.use(self.name) as models:
            parts: LazyComponents = models["parts"]
            detector, score_note = parts.optional("detector") if scoring else (None, "")
            progress(0.0, f"loading {request.backbone}")
            pipe = self.backbone(parts, request.backbone)
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
