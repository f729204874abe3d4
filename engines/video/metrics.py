"""The figures DreamVideo-2 reports, measured on a generated video: CLIP-T, CLIP-I, DINO-I,
CLIP-I inside the box, temporal consistency, and the detected subject box against the input
boxes (mIoU, centroid distance)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from ..layout.scoring import iou
from .media import pixel_box


def _normalise(features: torch.Tensor) -> torch.Tensor:
    return features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)


@torch.no_grad()
def clip_images(clip: dict, images: Sequence[Image.Image]) -> torch.Tensor:
    model, processor = clip["model"], clip["processor"]
    inputs = processor(images=list(images), return_tensors="pt").to(model.device)
    return _normalise(model.get_image_features(**inputs).pooler_output)


@torch.no_grad()
def clip_text(clip: dict, text: str) -> torch.Tensor:
    model, processor = clip["model"], clip["processor"]
    inputs = processor(text=[text], return_tensors="pt", padding=True, truncation=True)
    return _normalise(model.get_text_features(**inputs.to(model.device)).pooler_output)


@torch.no_grad()
def dino_images(dino: dict, images: Sequence[Image.Image]) -> torch.Tensor:
    """The CLS token of the last layer, as DINO's evaluations use it."""
    model, processor = dino["model"], dino["processor"]
    inputs = processor(images=list(images), return_tensors="pt").to(model.device)
    return _normalise(model(**inputs).last_hidden_state[:, 0])


def box_scores(
    detections: Sequence[tuple[float, float, float, float] | None],
    boxes: np.ndarray,
) -> dict[str, float]:
    """Per frame, the detected box (fractions; None: nothing found) against the input box:
    mean IoU over all frames (a miss counts 0), mean centroid distance over the frames with a
    detection (in frame fractions), and the fraction of frames with a detection."""
    ious, distances = [], []
    for found, box in zip(detections, boxes, strict=True):
        if found is None:
            ious.append(0.0)
            continue
        ious.append(iou(found, box))
        centre = np.array([(found[0] + found[2]) / 2, (found[1] + found[3]) / 2])
        target = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
        distances.append(float(np.linalg.norm(centre - target)))
    scores = {"box_mIoU": float(np.mean(ious)), "box_detected_frames": len(distances) / len(ious)}
    scores["box_centroid_distance"] = float(np.mean(distances)) if distances else None
    return scores


def detect_subject(detector, frames: Sequence[Image.Image], phrase: str) -> list:
    """Per frame, the detector's most confident box of the phrase, as fractions (or None)."""
    found = []
    for frame in frames:
        detections = detector.detect(frame, phrase)
        if not detections:
            found.append(None)
            continue
        best = max(detections, key=lambda d: d.score)
        x0, y0, x1, y1 = best.box
        found.append((x0 / frame.width, y0 / frame.height, x1 / frame.width, y1 / frame.height))
    return found


def video_metrics(
    frames: np.ndarray,
    prompt: str,
    clip: dict | None,
    dino: dict | None = None,
    subject: Image.Image | None = None,
    boxes: np.ndarray | None = None,
    detections: Sequence[tuple[float, float, float, float] | None] | None = None,
) -> dict[str, float | None]:
    """The metrics of a (F, H, W, 3) uint8 video whose models are given: the CLIP ones with
    `clip`, DINO-I with `dino`; those needing a subject or boxes only with them; the box
    scores from `detections` (`detect_subject`'s, one per frame) when given. A missing model
    leaves out only its own metrics."""
    pictures = [Image.fromarray(frame) for frame in frames]
    metrics: dict[str, float | None] = {}
    if clip is not None:
        frame_clip = clip_images(clip, pictures)
        metrics["clip_t"] = float((frame_clip @ clip_text(clip, prompt).T).mean())
        metrics["temporal_consistency"] = float((frame_clip[1:] * frame_clip[:-1]).sum(-1).mean())
    if subject is not None and clip is not None:
        subject_clip = clip_images(clip, [subject])
        metrics["clip_i"] = float((frame_clip @ subject_clip.T).mean())
        if boxes is not None:
            crops = [
                picture.crop(tuple(round(c) for c in pixel_box(box, *picture.size)))
                for picture, box in zip(pictures, boxes, strict=True)
            ]
            metrics["clip_i_box"] = float((clip_images(clip, crops) @ subject_clip.T).mean())
    if subject is not None and dino is not None:
        frame_dino = dino_images(dino, pictures)
        metrics["dino_i"] = float((frame_dino @ dino_images(dino, [subject]).T).mean())
    if boxes is not None and detections is not None:
        metrics.update(box_scores(detections, boxes))
    return metrics
