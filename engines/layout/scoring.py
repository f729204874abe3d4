"""The layout score: each box against the best detection of its phrase (IoU), and mIoU."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .requests import PhraseBox

Box = tuple[float, float, float, float]
SUCCESS_IOU = 0.5


@dataclass(frozen=True)
class Detection:
    box: Box  # x0, y0, x1, y1 in image pixels
    score: float


@dataclass(frozen=True)
class BoxScore:
    phrase: str
    box: Box
    detected: Box | None
    detection_score: float | None
    iou: float


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes; 0 when either is empty."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area_a = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    area_b = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def match_boxes(
    boxes: Sequence[PhraseBox], detections: dict[str, Sequence[Detection]]
) -> list[BoxScore]:
    """Score each box by the detection of its own phrase that overlaps it most. Boxes with the
    same phrase are matched one to one (greedily, highest IoU first), so one detected cat
    cannot satisfy two cat boxes."""
    pairs = []
    for b, box in enumerate(boxes):
        for d, det in enumerate(detections.get(box.phrase, ())):
            pairs.append((iou(box.coords(), det.box), b, d))
    pairs.sort(key=lambda pair: -pair[0])
    chosen: dict[int, int] = {}
    taken: set[tuple[str, int]] = set()
    for overlap, b, d in pairs:
        phrase = boxes[b].phrase
        if b in chosen or (phrase, d) in taken or overlap <= 0:
            continue
        chosen[b] = d
        taken.add((phrase, d))
    scores = []
    for b, box in enumerate(boxes):
        if b in chosen:
            det = detections[box.phrase][chosen[b]]
            scores.append(
                BoxScore(box.phrase, box.coords(), det.box, det.score, iou(box.coords(), det.box))
            )
        else:
            scores.append(BoxScore(box.phrase, box.coords(), None, None, 0.0))
    return scores


def summarize(scores: Sequence[BoxScore]) -> dict[str, float]:
    """mIoU over boxes and the fraction of boxes with IoU >= 0.5."""
    if not scores:
        return {}
    ious = [s.iou for s in scores]
    return {
        "mIoU": sum(ious) / len(ious),
        "success@0.5": sum(i >= SUCCESS_IOU for i in ious) / len(ious),
    }
