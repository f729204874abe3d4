"""The subject-video engine: subject photo + box trajectory + prompt -> a short video, the video
with its boxes, a strip of frames, and the metrics measured on them."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..base import Engine, Progress, no_progress
from ..detection import load_detector
from ..errors import InputError
from ..low_memory import efficient_attention
from ..parts import LoadContext, Parts
from ..peak_memory import peak_memory, reset_peak
from ..phrases import box_token_indices
from .control import CONTROLS, VideoControl, controlled_attention
from .loading import (
    load_clip,
    load_dino,
    load_ip_encoder,
    load_pipeline,
    set_memory_levers,
    use_ip_adapter,
)
from .media import to_uint8
from .metrics import detect_subject, video_metrics
from .presets import preset_settings, trailing_tokens
from .requests import SubjectVideoRequest
from .results import SubjectVideoResult
from .sampler import encode_reference, sample
from .segment import cut_out, load_segmenter
from .subject import Subject, load_subject
from .trajectory import BoxMasks, frame_boxes, unet_grids

PARTS = {
    "pipeline": load_pipeline,
    "ip_adapter": load_ip_encoder,
    "clip": load_clip,
    "dino": load_dino,
    "detector": load_detector,
    "segmenter": load_segmenter,
}


class SubjectVideoEngine(Engine):
    """A zero-shot approximation of DreamVideo-2 on AnimateDiff + IP-Adapter: the subject's
    features and attention are steered into the box of each frame by attention control."""

    name = "video"
    tasks = {SubjectVideoRequest: "generate"}

    def load(self, context: LoadContext) -> Parts:
        parts = context.lazy(PARTS)
        parts.get("pipeline")
        return parts

    def generate(
        self, request: SubjectVideoRequest, progress: Progress = no_progress
    ) -> SubjectVideoResult:
        subject = None
        if request.subject is not None:
            subject = load_subject(request.subject, request.subject_mask)
        keyframes, notes = request.clipped_keyframes()
        boxes = frame_boxes(keyframes, request.frames) if keyframes else None
        with self.manager.use(self.name) as parts:
            needed = self._parts_needed(request, subject, boxes)
            for name in needed:  # a missing model is reported before anything is generated
                parts.get(name)  # says "loading" (a progress stage) when it loads
            if "segmenter" in needed:
                progress(0.02, "cutting the subject out")
                subject = cut_out(parts.get("segmenter"), subject, request.phrase)
            pipe = parts.get("pipeline")
            check_prompt_length(pipe.tokenizer, request.prompt)
            tokens = ()
            if boxes is not None:
                (tokens,) = box_token_indices(pipe.tokenizer, request.prompt, [request.phrase])
            ip = parts.get("ip_adapter") if subject is not None else None
            use_ip_adapter(pipe, ip, request.ip_adapter if ip else None, request.ip_scale)
            levers = self.manager.low_memory.levers(
                self.manager.device, asked=request.low_memory, offload=request.cpu_offload
            )
            set_memory_levers(pipe, levers, self.manager.device.torch_device)
            control, reference = self._control(pipe, request, subject, boxes, tokens)

            started = time.perf_counter()
            device = self.manager.device
            reset_peak(device)
            generator = torch.Generator("cpu").manual_seed(request.seed)
            sampling = dict(
                pipe=pipe,
                prompt=request.prompt,
                negative_prompt=request.negative_prompt,
                frames=request.frames,
                height=request.height,
                width=request.width,
                steps=request.steps,
                guidance_scale=request.guidance_scale,
                generator=generator,
                ip_image=subject.cutout() if subject is not None else None,
                control=control,
                reference=reference,
                progress=lambda f, what: progress(0.05 + 0.85 * f, what),
            )
            with efficient_attention("efficient_attention" in levers):
                if control is None:
                    video = sample(**sampling)
                else:
                    with controlled_attention(pipe.unet, control):
                        video = sample(**sampling)
            seconds = time.perf_counter() - started
            metrics = {"generation_s": seconds, **peak_memory(device)}
            metrics["low_memory_levers"] = list(levers)
            if not np.isfinite(video).all():
                raise InputError(
                    "The video came out with NaN pixels (half-precision overflow); run again on "
                    "--device cpu or a GPU with bfloat16."
                )
            frames = to_uint8(video)
            metrics["controls"] = _controls_used(control)
            metrics["control"] = request.control
            detections = None
            if request.metrics:
                progress(0.92, "measuring the video")
                measured, detections = self._measure(parts, request, frames, subject, boxes)
                metrics.update(measured)
            sources = parts.sources(*needed, "clip", "dino", "detector")
        progress(1.0, "done")
        return SubjectVideoResult(
            recipe=self.recipe(request, sources, request.seed),
            metrics=metrics,
            frames=frames,
            boxes=boxes,
            fps=request.fps,
            phrase=request.phrase,
            detections=detections,
            notes=notes,
        )

    @staticmethod
    def _parts_needed(request, subject, boxes) -> list[str]:
        needed = ["pipeline"]
        if subject is not None:
            needed.append("ip_adapter")
            if request.remove_background and subject.alpha is None:
                needed.append("segmenter")
        return needed  # the metric models are optional: see _measure

    @staticmethod
    def _control(pipe, request, subject: Subject | None, boxes, tokens):
        """The per-call control data, or (None, None) when no control acts (the stock loop)."""
        has_boxes = boxes is not None
        preset = preset_settings(request, subject is not None, has_boxes)
        settings = preset.settings
        if not any(settings.acts(name) for name in CONTROLS):
            return None, None
        tokens = (*tokens, *trailing_tokens(pipe.tokenizer, request.prompt, preset))
        scale = pipe.vae_scale_factor
        latent_hw = (request.height // scale, request.width // scale)
        device, dtype = pipe._execution_device, pipe.unet.dtype
        masks = None
        if has_boxes:
            cfg = request.guidance_scale > 1
            masks = BoxMasks.build(boxes, latent_hw, cfg, request.soft_edge, device, dtype)
        control = VideoControl(settings, request.frames, masks, tuple(tokens))
        reference = None
        if settings.acts("reference"):
            image, alpha = subject.canvas(request.width, request.height)
            reference = encode_reference(pipe, image, request.seed)
            alpha = torch.from_numpy(alpha)[None, None]
            for h, w in unet_grids(*latent_hw):
                pooled = torch.nn.functional.adaptive_avg_pool2d(alpha, (h, w)).flatten()
                keep = pooled > 0.5 if (pooled > 0.5).any() else pooled > 0
                control.reference_keep[h * w] = keep.to(device)
        return control, reference

    def _measure(self, parts, request, frames, subject, boxes) -> tuple[dict[str, Any], Any]:
        """The metrics whose models are on this machine, and the per-frame detections the box
        scores came from (None without them); each metric without its model says which model
        it lacks ("not available (model video.dino missing)"): the video is made regardless."""
        clip, clip_note = parts.optional("clip")
        dino, dino_note = parts.optional("dino") if subject is not None else (None, "")
        detector, box_note = parts.optional("detector") if boxes is not None else (None, "")
        detections = None
        if detector is not None and request.phrase:
            pictures = [Image.fromarray(frame) for frame in frames]
            detections = detect_subject(detector, pictures, request.phrase)
        metrics = video_metrics(
            frames,
            request.prompt,
            clip,
            dino=dino,
            subject=subject.cutout() if subject is not None else None,
            boxes=boxes,
            detections=detections,
        )
        if clip_note:
            metrics |= dict.fromkeys(_clip_metrics(subject, boxes), clip_note)
        if dino_note:
            metrics["dino_i"] = dino_note
            if boxes is not None:
                metrics["dino_i_box"] = dino_note
        if box_note:
            metrics["box_mIoU"] = box_note
        return metrics, detections


def _clip_metrics(subject, boxes) -> list[str]:
    """The metrics CLIP measures for this request."""
    names = ["clip_t", "temporal_consistency"]
    if subject is not None:
        names += ["clip_i"] + (["clip_i_box"] if boxes is not None else [])
    return names


def _controls_used(control) -> str:
    return "none" if control is None else ", ".join(control.used()) or "none"


def check_prompt_length(tokenizer, prompt: str) -> None:
    """The text encoder reads 77 tokens (start and end included): a longer prompt is refused,
    saying where it would be cut."""
    ids = tokenizer(prompt, add_special_tokens=True).input_ids
    limit = tokenizer.model_max_length
    if len(ids) <= limit:
        return
    kept = tokenizer.decode(ids[limit - 6 : limit - 1]).strip()
    raise InputError(
        f"The prompt is {len(ids)} tokens; the text encoder reads {limit} (start and end "
        f"included), so it would be truncated after '...{kept}'. Shorten it."
    )
