"""The box metrics' conventions on frames with a known answer: a drawn square moving on a known
path, found by its pixels, against input boxes offset by a known amount."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from engines.video.metrics import box_scores, pad_square

WIDTH, HEIGHT, FRAMES, SIDE = 96, 64, 12, 16


def square_video() -> tuple[np.ndarray, np.ndarray]:
    """Frames with a white SIDE-px square moving 4 px right per frame from (8, 24), and its
    true boxes (fractions)."""
    frames = np.zeros((FRAMES, HEIGHT, WIDTH, 3), np.uint8)
    truth = []
    for f in range(FRAMES):
        x, y = 8 + 4 * f, 24
        frames[f, y : y + SIDE, x : x + SIDE] = 255
        truth.append((x / WIDTH, y / HEIGHT, (x + SIDE) / WIDTH, (y + SIDE) / HEIGHT))
    return frames, np.array(truth)


def found_by_pixels(frame: np.ndarray):
    """The white pixels' bounding box, fractions (the 'detector' with a known answer)."""
    ys, xs = np.nonzero(frame[..., 0] > 127)
    if not len(xs):
        return None
    return (xs.min() / WIDTH, ys.min() / HEIGHT, (xs.max() + 1) / WIDTH, (ys.max() + 1) / HEIGHT)


def test_the_drawn_square_is_found_exactly_on_its_path():
    frames, truth = square_video()
    scores = box_scores([found_by_pixels(f) for f in frames], truth, (WIDTH, HEIGHT))
    assert scores["box_mIoU"] == pytest.approx(1.0)
    assert scores["box_iou_video"] == pytest.approx(1.0)
    assert scores["box_centroid_distance"] == scores["box_centroid_diagonal"] == 0.0
    assert scores["box_detected_frames"] == 1.0 and scores["box_detected_count"] == FRAMES


def test_per_frame_and_video_level_iou_and_both_centroid_conventions_on_a_known_offset():
    frames, truth = square_video()
    # the input boxes: 8 px to the right of the square (half its side), the square hidden in
    # the last 3 frames (the detector misses them)
    boxes = truth + np.array([8 / WIDTH, 0, 8 / WIDTH, 0])
    frames[-3:] = 0
    scores = box_scores([found_by_pixels(f) for f in frames], boxes, (WIDTH, HEIGHT))
    overlap = (SIDE - 8) * SIDE / (2 * SIDE * SIDE - (SIDE - 8) * SIDE)  # 1/3 per found frame
    # ours: a miss counts 0 in the mean over all frames
    assert scores["box_mIoU"] == pytest.approx(overlap * 9 / 12)
    # Peekaboo's: sum(I) / sum(U) over the detected frames (equal boxes: the same 1/3)
    assert scores["box_iou_video"] == pytest.approx(overlap)
    assert scores["box_detected_count"] == 9
    # centroid: 8 px to the side; ours in frame fractions (of the width here), Peekaboo's in
    # pixels over the diagonal
    assert scores["box_centroid_distance"] == pytest.approx(8 / WIDTH)
    assert scores["box_centroid_diagonal"] == pytest.approx(8 / math.hypot(WIDTH, HEIGHT))


def test_video_level_iou_weights_frames_by_their_union_unlike_the_per_frame_mean():
    big = (0.0, 0.0, 1.0, 1.0)
    boxes = np.array([big, (0.0, 0.0, 0.1, 0.1)])
    found = [(0.0, 0.0, 1.0, 0.5), (0.0, 0.0, 0.1, 0.1)]  # IoU 0.5 on a big box, 1 on a small
    scores = box_scores(found, boxes, (100, 100))
    assert scores["box_mIoU"] == pytest.approx(0.75)
    assert scores["box_iou_video"] == pytest.approx((5000 + 100) / (10000 + 100))


def test_box_crops_are_padded_to_square_not_cut():
    tall = Image.new("RGB", (20, 60), (255, 0, 0))
    square = pad_square(tall)
    assert square.size == (60, 60)
    pixels = np.asarray(square)
    assert (pixels[:, 20:40] == (255, 0, 0)).all()  # every row of the crop, head to feet
    assert (pixels[:, :20] == 127).all() and (pixels[:, 40:] == 127).all()
    already = Image.new("RGB", (8, 8))
    assert pad_square(already) is already
