"""The layout score: each box against the best detection of its phrase (IoU), and mIoU."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..detection import Box, Detection, iou
from .requests import PhraseBox

SUCCESS_IOU = 0.5


@dataclass(frozen=True)
class BoxScore:
    phrase: str
    box: Box
    detected: Box | None
    detection_score: float | None
    iou: float


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
