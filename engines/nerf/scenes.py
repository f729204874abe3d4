"""Reading a captured scene: nerfstudio / instant-ngp / Blender `transforms*.json`, LLFF
`poses_bounds.npy` + `images/` or a COLMAP sparse model + `images/`, from a folder or a zip,
validated, at the working resolution.

Every problem is an InputError with one line a user can act on, naming the file; nothing
outside the scene folder is read, a zip is checked entry by entry before anything is extracted
(scene_zip.py), and a metadata file is checked for size before it is parsed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from ..errors import InputError
from .cameras import OPENCV, OPENGL, llff_to_opengl, to_opengl
from .capture_images import IMAGE_SUFFIXES, MAX_VIEWS, MIN_VIEWS, ViewFile, image_size, read_views
from .capture_space import place
from .colmap import model_folder, read_colmap
from .ray_space import AUTO, RaySpace
from .scene_zip import MAX_METADATA_BYTES, scene_folder

HOLD_OUT_EVERY = 8
BACKGROUNDS = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0)}
SPLITS = ("train", "val", "test")


@dataclass
class SceneData:
    """Views at the working resolution, OpenGL poses normalised into [-1, 1]^3."""

    images: np.ndarray  # (N, H, W, 3) uint8 (capture_images.unit_float: a batch as floats)
    c2w: np.ndarray  # (N, 3, 4)
    intrinsics: np.ndarray  # (N, 4): fx, fy, cx, cy at the working resolution
    train: list[int]
    test: list[int]
    source_format: str
    convention: str  # the file's convention, before conversion to OpenGL
    background: tuple[float, float, float]
    notes: list[str] = field(default_factory=list)
    world_to_scene: np.ndarray = field(default_factory=lambda: np.eye(4)[:3])
    """(3, 4): a point of the capture's world -> the same point in the normalised scene."""
    space: RaySpace = field(default_factory=RaySpace)

    @property
    def height(self) -> int:
        return int(self.images.shape[1])

    @property
    def width(self) -> int:
        return int(self.images.shape[2])


# -- the scene's folder -------------------------------------------------------------------


def find_scene_root(folder: Path) -> Path:
    """The folder holding transforms*.json or poses_bounds.npy: the top, or one level down
    (zips often wrap the scene in a folder)."""
    candidates = [folder] + sorted(p for p in folder.iterdir() if p.is_dir())
    for candidate in candidates:
        if candidate.name.startswith(("__MACOSX", ".")):
            continue
        if any((candidate / f"transforms{s}.json").is_file() for s in ("", "_train")):
            return candidate
        if (candidate / "poses_bounds.npy").is_file():
            return candidate
        if model_folder(candidate) is not None:
            return candidate
    raise InputError(
        "No transforms.json, transforms_train.json, poses_bounds.npy or COLMAP sparse/0/ "
        "model found in the scene (at its top or one folder down)."
    )


# -- images -------------------------------------------------------------------------------------


def inside(root: Path, relative: str, what: str) -> Path:
    """`root / relative`, refused when it resolves outside `root` (.., absolute, links)."""
    if not isinstance(relative, str) or not relative.strip():
        raise InputError(f"{what}: file_path must be a non-empty string.")
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root.resolve()):
        raise InputError(f"{what}: file_path {relative!r} leaves the scene folder; refused.")
    return candidate


def image_path(root: Path, base: Path, relative: str, what: str) -> Path:
    """A frame's image: `file_path` as given, or with an image extension added (Blender)."""
    try:
        path = inside(root, str(PurePosixPath(base.relative_to(root)) / relative), what)
        for candidate in (path, *(path.with_name(path.name + s) for s in IMAGE_SUFFIXES)):
            if candidate.is_file():
                return candidate
    except InputError:
        raise
    except (OSError, ValueError) as err:  # NUL bytes, names too long, unpaired surrogates
        shown = relative[:60]
        raise InputError(f"{what}: file_path {shown!r} is not a usable file name.") from err
    raise InputError(f"{what}: image {relative[:200]!r} is not in the scene.")


def check_count(count: int) -> None:
    if count < MIN_VIEWS:
        raise InputError(f"The scene has {count} views; at least {MIN_VIEWS} are needed.")
    if count > MAX_VIEWS:
        raise InputError(f"The scene has {count} views; at most {MAX_VIEWS} are read.")


MAX_POSE_VALUE = 1e8  # scene units: far beyond any capture, far below float overflow


def check_poses(poses: np.ndarray, what: str) -> None:
    """Finite, bounded poses whose rotation part has a finite, non-zero determinant (poses
    scaled by 1e300 are finite but their determinant is not)."""
    if not np.isfinite(poses).all():
        raise InputError(f"{what}: a transform_matrix holds a non-finite number.")
    big = np.flatnonzero((np.abs(poses) > MAX_POSE_VALUE).any(axis=(1, 2)))
    if big.size:
        raise InputError(
            f"{what}: frame {int(big[0])}'s transform_matrix holds a value over "
            f"{MAX_POSE_VALUE:.0e}; refused."
        )
    with np.errstate(all="ignore"):
        det = np.linalg.det(poses[:, :3, :3])
    bad = np.flatnonzero(~np.isfinite(det) | (np.abs(det) < 1e-6))
    if bad.size:
        raise InputError(f"{what}: frame {int(bad[0])}'s transform_matrix is singular.")


# -- transforms.json ----------------------------------------------------------------------------


def check_metadata_size(path: Path) -> None:
    """A file parsed whole (transforms*.json, poses_bounds.npy) is refused unread when big."""
    try:
        size = path.stat().st_size
    except OSError as err:
        raise InputError(f"{path.name} cannot be read: {err.strerror or err}.") from err
    if size > MAX_METADATA_BYTES:
        raise InputError(
            f"{path.name} is {size / 2**20:.0f} MB; at most {MAX_METADATA_BYTES >> 20} MB is read "
            f"({MAX_VIEWS} views need far less)."
        )


def _load_json(path: Path) -> dict:
    check_metadata_size(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise InputError(f"{path.name} is nested too deeply to be a scene's JSON.") from None
    except (OSError, ValueError) as err:  # ValueError: bad JSON, bad UTF-8, 5000-digit numbers
        raise InputError(f"{path.name} is not readable JSON: {str(err)[:200]}.") from err
    if not isinstance(data, dict):
        raise InputError(f"{path.name} must be a JSON object.")
    return data


def _matrix(frame: dict, what: str) -> np.ndarray:
    if "transform_matrix" not in frame:
        raise InputError(f"{what}: missing field transform_matrix.")
    try:
        matrix = np.asarray(frame["transform_matrix"], dtype=np.float64)
    except (TypeError, ValueError, OverflowError, RecursionError) as err:
        raise InputError(f"{what}: transform_matrix must be numbers.") from err
    if matrix.shape not in ((4, 4), (3, 4)):
        raise InputError(f"{what}: transform_matrix must be 4x4, got shape {matrix.shape}.")
    return matrix[:3, :4]


def _number(source: dict, key: str, what: str) -> float | None:
    value = source.get(key)
    if value is None:
        return None
    try:
        number = float(value)  # OverflowError: an integer of hundreds of digits
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(number):
        raise InputError(f"{what}: {key} must be a finite number, got {str(value)[:40]}.")
    return number


PINHOLE_MODELS = ("OPENCV", "PINHOLE")
DISTORTION_KEYS = ("k1", "k2", "p1", "p2", "k3")  # OpenCV's order


def _view(frame: dict, top: dict, path: Path, what: str) -> ViewFile:
    """The frame's image and camera: fx, fy, cx, cy in pixels of the full-size image, per
    frame, else top level; from fl_x/fl_y/cx/cy or Blender's camera_angle_x (and _y); OPENCV's
    k1, k2, p1, p2 (and k3) as distortion."""
    width, height = image_size(path)

    def get(key: str) -> float | None:
        value = _number(frame, key, what)
        return value if value is not None else _number(top, key, what)

    fx, fy = get("fl_x"), get("fl_y")
    if fx is None:
        angle = get("camera_angle_x")
        if angle is None:
            raise InputError(f"{what}: missing field fl_x or camera_angle_x (the focal length).")
        if not 0 < angle < math.pi:
            raise InputError(f"{what}: camera_angle_x must be between 0 and pi radians.")
        fx = 0.5 * width / math.tan(0.5 * angle)
        angle_y = get("camera_angle_y")
        fy = 0.5 * height / math.tan(0.5 * angle_y) if angle_y else fx
    fy = fy if fy is not None else fx
    if not (math.isfinite(fx) and math.isfinite(fy)) or fx <= 0 or fy <= 0:
        raise InputError(f"{what}: the focal length must be positive.")
    cx, cy = get("cx"), get("cy")
    for key, expected in (("w", width), ("h", height)):
        given = get(key)
        if given is not None and int(given) != expected:
            raise InputError(
                f"{what}: {key} says {int(given)} but the images are {width}x{height}."
            )
    if get("k4"):
        raise InputError(f"{what}: k4 is a fisheye coefficient; {FISHEYE_HELP}")
    coefficients = tuple(get(key) or 0.0 for key in DISTORTION_KEYS)
    cx = width / 2 if cx is None else cx
    cy = height / 2 if cy is None else cy
    return ViewFile(
        path, width, height, fx, fy, cx, cy, coefficients if any(coefficients) else None
    )


FISHEYE_HELP = (
    "only pinhole cameras (PINHOLE, OPENCV with k1 k2 p1 p2) are read: undistort the images "
    "to pinhole first (COLMAP's image_undistorter)."
)


def read_transforms(root: Path) -> tuple[list[Path], np.ndarray, list[dict], list[str], str]:
    """Image paths, raw poses, (frame, top) dicts and split names of every frame."""
    files = {s: root / f"transforms_{s}.json" for s in SPLITS}
    files = {s: p for s, p in files.items() if p.is_file()}
    if (root / "transforms.json").is_file() and "train" not in files:
        files = {"all": root / "transforms.json"}
    paths, matrices, sources, splits = [], [], [], []
    convention = OPENGL
    for split, path in files.items():
        top = _load_json(path)
        frames = top.get("frames")
        if not isinstance(frames, list):
            raise InputError(f"{path.name}: missing field frames (a list of views).")
        if not frames:
            raise InputError(f"{path.name}: frames is empty; the scene has no views.")
        model = top.get("camera_model", "OPENCV")
        if str(model).upper() not in PINHOLE_MODELS:
            shown = str(model)[:40]
            raise InputError(f"{path.name}: camera_model {shown!r} is refused; {FISHEYE_HELP}")
        if str(top.get("convention", OPENGL)).lower() == OPENCV:
            convention = OPENCV
        if len(paths) + len(frames) > MAX_VIEWS:  # before reading any image
            check_count(len(paths) + len(frames))
        for index, frame in enumerate(frames):
            what = f"{path.name} frame {index}"
            if not isinstance(frame, dict):
                raise InputError(f"{what} must be a JSON object.")
            if "file_path" not in frame:
                raise InputError(f"{what}: missing field file_path.")
            if not isinstance(frame["file_path"], str) or not frame["file_path"].strip():
                raise InputError(f"{what}: file_path must be a non-empty string.")
            matrices.append(_matrix(frame, what))
            paths.append((frame["file_path"], path.parent, what))
            sources.append((frame, top))
            splits.append(split)
    check_count(len(paths))
    resolved = [image_path(root, base, rel, what) for rel, base, what in paths]
    return resolved, np.stack(matrices), sources, splits, convention


def _split(splits: list[str], count: int) -> tuple[list[int], list[int]]:
    if "test" in splits:
        train = [i for i, s in enumerate(splits) if s == "train"]
        test = [i for i, s in enumerate(splits) if s == "test"]
        if train:
            return train, test
    test = list(range(0, count, HOLD_OUT_EVERY))
    return [i for i in range(count) if i not in test], test


def placed(
    images: np.ndarray, intrinsics: np.ndarray, c2w: np.ndarray, space: str, **depth
) -> dict:
    """SceneData fields of the views placed in their ray space (capture_space.place)."""
    height, width = images.shape[1:3]
    placement = place(c2w, intrinsics, width, height, space, **depth)
    note = f"Ray space: {placement.space.kind} ({placement.reason})."
    return {
        "images": images,
        "c2w": placement.c2w.astype(np.float32),
        "intrinsics": intrinsics.astype(np.float32),
        "world_to_scene": placement.world_to_scene,
        "space": placement.space,
        "notes": [note],
    }


def load_transforms_scene(root: Path, resolution: int, background, space: str) -> SceneData:
    paths, matrices, sources, splits, convention = read_transforms(root)
    check_poses(matrices, "transforms")
    views = [
        _view(frame, top, path, path.name)
        for (frame, top), path in zip(sources, paths, strict=True)
    ]
    images, intrinsics = read_views(views, resolution, background)
    train, test = _split(splits, len(paths))
    return SceneData(
        **placed(images, intrinsics, to_opengl(matrices, convention), space),
        train=train,
        test=test,
        source_format="transforms.json",
        convention=convention,
        background=background,
    )


# -- LLFF ---------------------------------------------------------------------------------------


NPY_HEADERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def read_poses_bounds(path: Path) -> np.ndarray:
    """(N, 17) float64 from an LLFF poses_bounds.npy, its header (shape, dtype) checked before
    the array is read."""
    check_metadata_size(path)
    unreadable = f"{path.name} is not a readable NumPy array"
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version not in NPY_HEADERS:
                raise InputError(f"{unreadable} (format version {version}).")
            shape, _, dtype = NPY_HEADERS[version](handle)
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001 - numpy parses the header with tokenize and ast
        raise InputError(f"{unreadable}: {str(err)[:200]}.") from err
    if dtype.kind not in "fiu" or dtype.fields is not None:
        raise InputError(f"{path.name} holds {dtype} values; poses_bounds.npy holds numbers.")
    if len(shape) != 2 or shape[1] != 17:
        raise InputError(f"{path.name} must be (N, 17), got {shape}.")
    check_count(shape[0])
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise InputError(f"{unreadable}: {str(err)[:200]}.") from err
    return data.astype(np.float64)


def load_llff_scene(root: Path, resolution: int, background, space: str) -> SceneData:
    data = read_poses_bounds(root / "poses_bounds.npy")
    folder = root / "images"
    if not folder.is_dir():
        raise InputError("An LLFF scene needs an images/ folder beside poses_bounds.npy.")
    paths = sorted(
        p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_symlink()
    )
    if len(paths) != data.shape[0]:
        raise InputError(
            f"poses_bounds.npy has {data.shape[0]} poses but images/ has {len(paths)} images."
        )
    if not np.isfinite(data).all():
        raise InputError("poses_bounds.npy holds a non-finite number.")
    poses = data[:, :15].reshape(-1, 3, 5)
    bounds = data[:, 15:17]
    if (
        (bounds <= 0).any()
        or (bounds[:, 1] < bounds[:, 0]).any()
        or (bounds > MAX_POSE_VALUE).any()
    ):
        raise InputError(
            f"poses_bounds.npy: every near/far bound must be positive and under "
            f"{MAX_POSE_VALUE:.0e}, near <= far."
        )
    check_poses(poses[:, :, :4], "poses_bounds.npy")
    height0, width0, focal = poses[0, :, 4]
    if min(height0, width0, focal) < 1 or max(height0, width0, focal) > MAX_POSE_VALUE:
        raise InputError(
            f"poses_bounds.npy: image height, width and focal must be 1 to {MAX_POSE_VALUE:.0e}."
        )
    # hwf is the full-size capture's; the images may be a downscaled set (read_views scales)
    views = [
        ViewFile(p, int(round(width0)), int(round(height0)), focal, focal, width0 / 2, height0 / 2)
        for p in paths
    ]
    images, intrinsics = read_views(views, resolution, background)
    train, test = _split([], len(paths))
    fields = placed(images, intrinsics, llff_to_opengl(poses[:, :, :4]), space, bounds=bounds)
    return SceneData(
        **fields,
        train=train,
        test=test,
        source_format="LLFF poses_bounds.npy",
        convention="llff",
        background=background,
    )


# -- COLMAP -------------------------------------------------------------------------------------


def load_colmap_scene(
    root: Path, folder: Path, resolution: int, background, space: str
) -> SceneData:
    image_root = root / "images"
    if not image_root.is_dir():
        raise InputError("A COLMAP scene needs an images/ folder beside sparse/.")
    model = read_colmap(root, folder, image_root)
    images, intrinsics = read_views(model.views, resolution, background)
    train, test = _split([], len(model.views))
    c2w = to_opengl(model.c2w, OPENCV)
    return SceneData(
        **placed(images, intrinsics, c2w, space, points=model.points),
        train=train,
        test=test,
        source_format="COLMAP",
        convention=OPENCV,
        background=background,
    )


def load_scene(
    path: str | Path, resolution: int, background: str = "white", space: str = AUTO
) -> SceneData:
    """Read a scene folder or zip at the working `resolution` (longer side, px), placed in
    the ray `space` (box, ndc, contract; chosen from the poses when auto)."""
    colour = BACKGROUNDS[background]
    with scene_folder(path) as folder:
        root = find_scene_root(folder)
        if any(root.glob("transforms*.json")):
            return load_transforms_scene(root, resolution, colour, space)
        if (root / "poses_bounds.npy").is_file():
            return load_llff_scene(root, resolution, colour, space)
        return load_colmap_scene(root, model_folder(root), resolution, colour, space)
