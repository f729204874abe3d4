"""The captures people bring: COLMAP sparse models, lens distortion, downscaled image folders,
mixed image sizes. Each fixture is made by our own code (tests/tiny_captures.py); the property
is that a 3D point the cameras see lands, in the loaded (undistorted, resized, normalised)
views, where the loaded pinhole cameras project it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_captures import (
    POINTS,
    blob_centre,
    pinhole_pixels,
    write_colmap_capture,
    write_nerfstudio_capture,
)

from engines.errors import InputError
from engines.nerf.scenes import load_scene

pytest.importorskip("pycolmap")
pytest.importorskip("cv2")

RESOLUTION = 96


def landing_errors(scene) -> np.ndarray:
    """Per view and point: px between the blob in the loaded image and the projection."""
    errors = []
    for view in range(len(scene.images)):
        projected = pinhole_pixels(scene, view, POINTS)
        gaps = np.linalg.norm(projected[:, None] - projected[None], axis=-1)
        assert np.sort(gaps, axis=1)[:, 1].min() > 6, "blobs too close to measure"
        for expected in projected:
            found = blob_centre(scene.images[view], expected)
            errors.append(np.linalg.norm(found - expected))
    return np.asarray(errors)


@pytest.mark.parametrize(
    ("model", "binary"),
    [
        ("PINHOLE", True),
        ("SIMPLE_PINHOLE", False),
        ("SIMPLE_RADIAL", True),
        ("RADIAL", False),
        ("OPENCV", True),
        ("OPENCV", False),
    ],
)
def test_colmap_points_land_where_the_loaded_cameras_project_them(tmp_path, model, binary):
    folder = write_colmap_capture(tmp_path / "colmap", model, binary=binary)
    scene = load_scene(folder, RESOLUTION)
    assert scene.source_format == "COLMAP" and scene.images.shape == (8, 96, 96, 3)
    errors = landing_errors(scene)
    assert errors.max() < 0.2, errors.max()


def test_ignoring_the_distortion_would_miss_by_pixels(tmp_path, monkeypatch):
    """The property has teeth: read the same OPENCV capture as if it were pinhole."""
    import engines.nerf.colmap as colmap

    folder = write_colmap_capture(tmp_path / "colmap", "OPENCV")
    monkeypatch.setattr(colmap, "_distortion", lambda model, params: None)
    errors = landing_errors(load_scene(folder, RESOLUTION))
    assert errors.max() > 1.0, errors.max()


def test_nerfstudio_opencv_distortion_is_removed(tmp_path):
    folder = write_nerfstudio_capture(tmp_path / "ns")
    scene = load_scene(folder, RESOLUTION)
    errors = landing_errors(scene)
    assert errors.max() < 0.2, errors.max()


def test_mixed_image_sizes_of_one_shape_read_with_their_own_intrinsics(tmp_path):
    folder = write_colmap_capture(tmp_path / "mixed", "OPENCV", mixed=True)
    scene = load_scene(folder, RESOLUTION)
    assert scene.images.shape == (8, 96, 96, 3)
    assert landing_errors(scene).max() < 0.2


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("OPENCV_FISHEYE", "camera_model 'OPENCV_FISHEYE' is refused"),
        ("EQUIRECTANGULAR", "camera_model 'EQUIRECTANGULAR' is refused"),
    ],
)
def test_fisheye_and_equirectangular_transforms_are_refused(tmp_path, model, message):
    folder = write_nerfstudio_capture(tmp_path / "ns")
    meta = json.loads((folder / "transforms.json").read_text())
    (folder / "transforms.json").write_text(json.dumps({**meta, "camera_model": model}))
    with pytest.raises(InputError, match=message) as err:
        load_scene(folder, RESOLUTION)
    assert "\n" not in str(err.value) and "transforms.json" in str(err.value)


def test_a_colmap_fisheye_camera_is_refused(tmp_path):
    import pycolmap

    folder = write_colmap_capture(tmp_path / "c", "OPENCV", distorted=False)
    model = pycolmap.Reconstruction(str(folder / "sparse" / "0"))
    fisheye = pycolmap.Camera.create_from_model_name(1, "OPENCV_FISHEYE", 80.0, 96, 96)
    model.cameras[1].model = fisheye.model
    model.cameras[1].params = fisheye.params
    model.write_binary(str(folder / "sparse" / "0"))
    with pytest.raises(InputError, match="OPENCV_FISHEYE camera") as err:
        load_scene(folder, RESOLUTION)
    assert "sparse/0" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_colmap_model_is_one_line_naming_it(tmp_path, damage):
    folder = write_colmap_capture(tmp_path / "c", "PINHOLE", distorted=False)
    path = folder / "sparse" / "0" / "images.bin"
    data = path.read_bytes()
    path.write_bytes(b"\xff" * 64 if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(InputError, match="sparse/0: not a readable COLMAP model") as err:
        load_scene(folder, RESOLUTION)
    assert "\n" not in str(err.value)


def test_a_colmap_image_outside_the_scene_is_refused(tmp_path):
    import pycolmap

    folder = write_colmap_capture(tmp_path / "c", "PINHOLE", distorted=False)
    model = pycolmap.Reconstruction(str(folder / "sparse" / "0"))
    model.images[1].name = "../../outside.png"
    model.write_text(str(folder / "sparse" / "0"))
    for stale in (folder / "sparse" / "0").glob("*.bin"):
        stale.unlink()
    with pytest.raises(InputError, match="leaves the scene folder"):
        load_scene(folder, RESOLUTION)


# -- downscaled folders -------------------------------------------------------------------------


def write_llff_with_downscaled_sets(folder, full=(4800, 32)):
    """An LLFF capture whose images/ are over the 4096 px cap (JPEG), with images_2/4/8 as PNG
    (as LLFF's minify writes them); each set a different shade, so a test can tell which was
    read."""
    from PIL import Image

    rows = []
    for factor, shade in ((1, 10), (2, 60), (4, 120), (8, 200)):
        sub = folder / ("images" if factor == 1 else f"images_{factor}")
        sub.mkdir(parents=True)
        size = (full[0] // factor, full[1] // factor)
        for i in range(8):
            suffix = ".jpg" if factor == 1 else ".png"
            Image.new("RGB", size, (shade, shade, shade)).save(sub / f"{i:03d}{suffix}")
    for i in range(8):
        pose_drb = np.array([[0, 1, 0, 0.1 * i], [1, 0, 0, 0], [0, 0, 1, 0]], dtype=float)
        hwf = np.array([[full[1]], [full[0]], [3000.0]])
        rows.append(np.concatenate([np.concatenate([pose_drb, hwf], 1).ravel(), [1.0, 5.0]]))
    np.save(folder / "poses_bounds.npy", np.stack(rows))
    return folder


@pytest.mark.parametrize(
    ("resolution", "factor", "shade"), [(1024, 4, 120), (512, 8, 200), (2048, 2, 60)]
)
def test_the_smallest_downscaled_folder_at_least_the_working_resolution_is_read(
    tmp_path, resolution, factor, shade
):
    folder = write_llff_with_downscaled_sets(tmp_path / "llff")
    scene = load_scene(folder, resolution)
    assert scene.width == resolution
    assert abs(float(scene.images.mean()) - shade) < 1.5, factor
    # the focal (3000 px at 4800 px wide) scales with the working width, whichever set is read
    np.testing.assert_allclose(scene.intrinsics[:, 0], 3000 * resolution / 4800, rtol=1e-4)


def test_a_capture_over_the_cap_without_downscaled_folders_says_what_to_add(tmp_path):
    import shutil

    folder = write_llff_with_downscaled_sets(tmp_path / "llff")
    for factor in (2, 4, 8):
        shutil.rmtree(folder / f"images_{factor}")
    with pytest.raises(InputError, match="over 4096 px are refused .*images_4/"):
        load_scene(folder, 512)


def test_colmap_downscaled_folder_keeps_points_landing(tmp_path):
    from PIL import Image

    folder = write_colmap_capture(tmp_path / "c", "OPENCV", size=(288, 288))
    (folder / "images_2").mkdir()
    for path in sorted((folder / "images").iterdir()):
        with Image.open(path) as image:
            image.resize((144, 144), Image.Resampling.LANCZOS).save(folder / "images_2" / path.name)
    scene = load_scene(folder, RESOLUTION)
    assert landing_errors(scene).max() < 0.2
