"""The figures DreamVideo-2 reports, measured on a generated video: CLIP-T, CLIP-I, DINO-I,
CLIP-I and DINO-I inside the box (box crops padded to square), temporal consistency, and the
detected subject box against the input boxes (mIoU and centroid distance, ours and
Peekaboo's conventions)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from ..detection import iou
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
    size: tuple[int, int] = (1, 1),
) -> dict[str, float]:
    """Per frame, the detected box (fractions; None: nothing found) against the input box, in
    two conventions. Ours (DreamVideo-2's names): mean IoU over all frames (a miss counts 0),
    mean centroid distance over the frames with a detection (frame fractions), the fraction of
    frames with a detection. Peekaboo's: sum(intersection) / sum(union) over the frames with a
    detection (`box_iou_video`; a report keeps it only for videos with > 8 detected frames) and
    the centroid distance in pixels over the frame's diagonal; `size` is (width, height) px."""
    width, height = size
    ious, distances, diagonal = [], [], []
    intersections = unions = 0.0
    for found, box in zip(detections, boxes, strict=True):
        if found is None:
            ious.append(0.0)
            continue
        ious.append(iou(found, box))
        inter, union = _overlap(found, box, width, height)
        intersections, unions = intersections + inter, unions + union
        centre = np.array([(found[0] + found[2]) / 2, (found[1] + found[3]) / 2])
        target = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
        distances.append(float(np.linalg.norm(centre - target)))
        pixels = (centre - target) * (width, height)
        diagonal.append(float(np.linalg.norm(pixels) / math.hypot(width, height)))
    scores = {"box_mIoU": float(np.mean(ious)), "box_detected_frames": len(distances) / len(ious)}
    scores["box_centroid_distance"] = float(np.mean(distances)) if distances else None
    scores["box_iou_video"] = intersections / unions if unions > 0 else None
    scores["box_centroid_diagonal"] = float(np.mean(diagonal)) if diagonal else None
    scores["box_detected_count"] = len(distances)
    return scores


def _overlap(a, b, width: int, height: int) -> tuple[float, float]:
    """Intersection and union of two fraction boxes, in pixels of a width x height frame."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * width
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1])) * height
    area_a = (a[2] - a[0]) * (a[3] - a[1]) * width * height
    area_b = (b[2] - b[0]) * (b[3] - b[1]) * width * height
    return ix * iy, area_a + area_b - ix * iy


def pad_square(image: Image.Image, fill=(127, 127, 127)) -> Image.Image:
    """The image centred on a square of its longer side: CLIP's and DINO's processors
    centre-crop, which would cut a tall subject's head and feet off."""
    side = max(image.size)
    if image.size == (side, side):
        return image
    square = Image.new("RGB", (side, side), fill)
    square.paste(image.convert("RGB"), ((side - image.width) // 2, (side - image.height) // 2))
    return square


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
    crops = None
    if subject is not None:
        subject = pad_square(subject)
        if boxes is not None:
            crops = [
                pad_square(picture.crop(tuple(round(c) for c in pixel_box(box, *picture.size))))
                for picture, box in zip(pictures, boxes, strict=True)
            ]
    if subject is not None and clip is not None:
        subject_clip = clip_images(clip, [subject])
        metrics["clip_i"] = float((frame_clip @ subject_clip.T).mean())
        if crops is not None:
            metrics["clip_i_box"] = float((clip_images(clip, crops) @ subject_clip.T).mean())
    if subject is not None and dino is not None:
        subject_dino = dino_images(dino, [subject])
        metrics["dino_i"] = float((dino_images(dino, pictures) @ subject_dino.T).mean())
        if crops is not None:
            metrics["dino_i_box"] = float((dino_images(dino, crops) @ subject_dino.T).mean())
    if boxes is not None and detections is not None:
        metrics.update(box_scores(detections, boxes, pictures[0].size))
    return metrics
