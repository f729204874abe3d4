"""Tiny captures made by our own code, in the formats people bring (COLMAP sparse models written
with pycolmap's writer, nerfstudio transforms.json with OPENCV distortion): cameras on a ring
around known 3D points, each image showing a bright blob where its camera (lens distortion
included) sees each point, so a test can check the points land where the loaded cameras say."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from engines.nerf.cameras import look_at

POINTS = np.array(
    [
        [0.3 * math.cos(0.4 * math.pi * k), 0.3 * math.sin(0.4 * math.pi * k), 0.5 * k - 1.0]
        for k in range(5)
    ]
)
"""World points each view shows as a blob (COLMAP-style +Z up world, cameras 3 units away): a
helix, so that no two blobs of a view merge (at least 7 px apart at 64 px)."""
BLOB_SIGMA = 1.6  # px, in the full-size image


def ring_opencv_c2w(count: int, radius: float = 2.2) -> np.ndarray:
    """(count, 3, 4) camera-to-world poses in OpenCV axes on a tilted ring, looking at 0."""
    poses = []
    for i in range(count):
        angle = 2 * math.pi * i / count
        position = np.array([radius * math.cos(angle), radius * math.sin(angle), 0.6])
        gl = look_at(position, np.zeros(3), np.array([0.0, 0.0, 1.0]))
        cv = gl.copy()
        cv[:, 1:3] *= -1
        poses.append(cv)
    return np.stack(poses)


def colmap_camera(model: str, width: int, height: int, distorted: bool, camera_id: int = 1):
    """A pycolmap camera of `model` with a ~50 degree field of view and, if `distorted`,
    noticeable distortion (a few px at the corners)."""
    import pycolmap

    focal = 0.5 * width / math.tan(math.radians(32))
    cx, cy = width / 2 + 1.3, height / 2 - 0.7
    k1, k2, p1, p2 = (-0.22, 0.05, 0.002, -0.003) if distorted else (0.0, 0.0, 0.0, 0.0)
    params = {
        "SIMPLE_PINHOLE": [focal, cx, cy],
        "PINHOLE": [focal, focal * 1.02, cx, cy],
        "SIMPLE_RADIAL": [focal, cx, cy, k1],
        "RADIAL": [focal, cx, cy, k1, k2],
        "OPENCV": [focal, focal * 1.02, cx, cy, k1, k2, p1, p2],
    }[model]
    camera = pycolmap.Camera.create_from_model_name(camera_id, model, focal, width, height)
    camera.params = params
    return camera


def blob_image(width: int, height: int, centres: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8: dark grey with a white Gaussian blob at each (x, y) (pixel centres at
    i + 0.5)."""
    cols = np.arange(width) + 0.5
    rows = np.arange(height) + 0.5
    value = np.zeros((height, width))
    for x, y in centres:
        value += np.exp(-((cols[None] - x) ** 2 + (rows[:, None] - y) ** 2) / (2 * BLOB_SIGMA**2))
    grey = 0.1 + 0.85 * np.clip(value, 0, 1)
    return np.repeat((grey * 255 + 0.5).astype(np.uint8)[..., None], 3, axis=-1)


def project(camera, c2w_cv: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(P, 2) pixels (centres at i + 0.5, distortion applied) where `camera` sees `points`."""
    rotation, position = c2w_cv[:, :3], c2w_cv[:, 3]
    in_camera = (points - position) @ rotation  # world -> camera: R^T (x - o)
    return np.asarray(camera.img_from_cam(in_camera), dtype=np.float64)


def write_colmap_capture(
    folder: Path,
    model: str = "OPENCV",
    size: tuple[int, int] = (144, 144),
    count: int = 8,
    distorted: bool = True,
    binary: bool = True,
    mixed: bool = False,
) -> Path:
    """`folder/images/*.png` and `folder/sparse/0/` written by pycolmap; `mixed`: every
    other view is taken by a second camera at 4/3 the size (same aspect ratio)."""
    import pycolmap
    from PIL import Image

    (folder / "images").mkdir(parents=True, exist_ok=True)
    reconstruction = pycolmap.Reconstruction()
    cameras = [colmap_camera(model, *size, distorted, 1)]
    if mixed:
        cameras.append(colmap_camera(model, size[0] * 4 // 3, size[1] * 4 // 3, distorted, 2))
    for camera in cameras:
        reconstruction.add_camera_with_trivial_rig(camera)
    tracks = [pycolmap.Track() for _ in POINTS]
    for index, c2w in enumerate(ring_opencv_c2w(count)):
        camera = cameras[index % len(cameras)]
        pixels = project(camera, c2w, POINTS)
        name = f"view_{index:03d}.png"
        Image.fromarray(blob_image(camera.width, camera.height, pixels)).save(
            folder / "images" / name
        )
        image = pycolmap.Image(
            name=name, keypoints=pixels, camera_id=camera.camera_id, image_id=index + 1
        )
        world_to_camera = np.linalg.inv(np.vstack([c2w, [0, 0, 0, 1]]))[:3]
        reconstruction.add_image_with_trivial_frame(image, pycolmap.Rigid3d(world_to_camera))
        for point, track in enumerate(tracks):
            track.add_element(index + 1, point)
    for point, track in zip(POINTS, tracks, strict=True):
        reconstruction.add_point3D(point, track)
    sparse = folder / "sparse" / "0"
    sparse.mkdir(parents=True, exist_ok=True)
    (reconstruction.write_binary if binary else reconstruction.write_text)(str(sparse))
    return folder


def write_nerfstudio_capture(folder: Path, size: tuple[int, int] = (144, 144), count: int = 8):
    """nerfstudio's `transforms.json` (OpenGL poses, camera_model OPENCV with k1 k2 p1 p2) and
    distorted images, as ns-process-data leaves them."""
    from PIL import Image

    (folder / "images").mkdir(parents=True, exist_ok=True)
    camera = colmap_camera("OPENCV", *size, True)
    fx, fy, cx, cy, k1, k2, p1, p2 = (float(v) for v in camera.params)
    frames = []
    for index, c2w in enumerate(ring_opencv_c2w(count)):
        pixels = project(camera, c2w, POINTS)
        name = f"images/frame_{index:05d}.png"
        Image.fromarray(blob_image(*size, pixels)).save(folder / name)
        gl = c2w.copy()
        gl[:, 1:3] *= -1
        frames.append(
            {"file_path": name, "transform_matrix": np.vstack([gl, [0, 0, 0, 1]]).tolist()}
        )
    meta = {
        "camera_model": "OPENCV",
        "fl_x": fx,
        "fl_y": fy,
        "cx": cx,
        "cy": cy,
        "w": size[0],
        "h": size[1],
        "k1": k1,
        "k2": k2,
        "p1": p1,
        "p2": p2,
        "frames": frames,
    }
    (folder / "transforms.json").write_text(json.dumps(meta))
    return folder


def pinhole_pixels(scene, view: int, points: np.ndarray) -> np.ndarray:
    """(P, 2) where the loaded scene's pinhole camera `view` sees world `points` (mapped into
    the scene by its world_to_scene), pixel centres at i + 0.5."""
    mapped = points @ scene.world_to_scene[:, :3].T + scene.world_to_scene[:, 3]
    c2w = scene.c2w[view].astype(np.float64)
    local = (mapped - c2w[:, 3]) @ c2w[:, :3]  # OpenGL camera axes: x right, y up, -z forward
    fx, fy, cx, cy = scene.intrinsics[view]
    depth = -local[:, 2]
    return np.stack([cx + fx * local[:, 0] / depth, cy - fy * local[:, 1] / depth], axis=-1)


def blob_centre(image: np.ndarray, near: np.ndarray, radius: int = 4) -> np.ndarray:
    """The intensity-weighted centre (x, y) of the blob in `image` (H, W, 3) around `near`."""
    grey = image.mean(axis=-1)
    col, row = int(near[0]), int(near[1])
    top, left = max(row - radius, 0), max(col - radius, 0)
    patch = grey[top : row + radius + 1, left : col + radius + 1]
    weight = np.clip(patch - np.median(grey), 0, None)
    rows, cols = np.mgrid[top : top + patch.shape[0], left : left + patch.shape[1]]
    total = weight.sum()
    return np.array([(weight * (cols + 0.5)).sum() / total, (weight * (rows + 0.5)).sum() / total])
