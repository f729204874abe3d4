"""Removing lens distortion (OpenCV's radial-tangential model, as COLMAP's SIMPLE_RADIAL,
RADIAL and OPENCV cameras and nerfstudio's `camera_model: OPENCV` give it) so that every view
is a pinhole camera, the only kind the ray generator models."""

from __future__ import annotations

import numpy as np


def undistort(
    pixels: np.ndarray, intrinsics: np.ndarray, distortion: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """The image (h, w, 3) float32 resampled onto a pinhole camera of the same size, and that
    camera's fx, fy, cx, cy (pixel centres at i + 0.5). The new camera keeps only pixels the
    distorted image saw (OpenCV's alpha 0). ValueError when the coefficients give no usable
    camera."""
    import cv2

    height, width = pixels.shape[:2]
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    # OpenCV puts pixel centres at integers; we put them at i + 0.5.
    matrix = np.array([[fx, 0, cx - 0.5], [0, fy, cy - 0.5], [0, 0, 1]], dtype=np.float64)
    coefficients = np.asarray(distortion, dtype=np.float64)
    if not np.isfinite(coefficients).all():
        raise ValueError("the distortion coefficients are not finite numbers")
    new, _ = cv2.getOptimalNewCameraMatrix(matrix, coefficients, (width, height), 0)
    if not np.isfinite(new).all() or new[0, 0] <= 0 or new[1, 1] <= 0:
        raise ValueError("the distortion coefficients give no usable undistorted camera")
    map_x, map_y = cv2.initUndistortRectifyMap(
        matrix, coefficients, None, new, (width, height), cv2.CV_32FC1
    )
    out = cv2.remap(
        np.ascontiguousarray(pixels, dtype=np.float32),
        map_x,
        map_y,
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    camera = np.array([new[0, 0], new[1, 1], new[0, 2] + 0.5, new[1, 2] + 0.5])
    return np.clip(out, 0.0, 1.0), camera
