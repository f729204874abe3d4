"""Crafted NeRF inputs of a few KB whose headers claim gigabytes (views x working pixels, a huge
transforms.json, a zip of countless or deep entries, npy and COLMAP counts, `.nerf` header
values): each is refused in under 2 s with the limit named, and none grows the process by a
gigabyte (peak RSS, measured in a fresh process)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from tiny_nerf_inputs import (
    png_bytes,
    poses_bounds,
    scene_zip,
    tiny_scene_file,
    transforms,
    transforms_zip,
    write_llff_scene,
    write_transforms_scene,
)

from engines.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


def read(path: Path, resolution: int = 16) -> Callable[[], object]:
    from engines.nerf.scenes import load_scene

    return lambda: load_scene(path, resolution)


# -- captures --------------------------------------------------------------------------------


def many_tiny_views(tmp: Path):
    """The probe's zip: 1000 8x8 PNGs (a few hundred KB) fitted at 1024 px ask for 1000 x
    1024 x 1024 pixels, 11.7 GiB as float32 before the cap."""
    path = tmp / "views.zip"
    path.write_bytes(transforms_zip(1000))
    return read(path, 1024), r"1000 views at 1024x1024 are 1049 million pixels.*at most 268"


def big_transforms_in_a_zip(tmp: Path):
    path = tmp / "frames.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("transforms.json", b" " * (9 << 20))  # 9 MB, compressed to KB
    return read(path), r"frames.zip: transforms.json is 9 MB; at most 8 MB is read"


def big_transforms_in_a_folder(tmp: Path):
    folder = write_transforms_scene(tmp / "scene")
    text = json.dumps(transforms())
    (folder / "transforms.json").write_text(text[:-1] + ', "pad": "' + "x" * (9 << 20) + '"}')
    return read(folder), r"transforms.json is 9 MB; at most 8 MB is read"


def countless_entries(tmp: Path):
    from engines.nerf.scene_zip import MAX_ZIP_ENTRIES

    path = tmp / "entries.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for index in range(MAX_ZIP_ENTRIES + 1):
            archive.writestr(f"e{index}", b"")
    return read(path), rf"entries.zip has {MAX_ZIP_ENTRIES + 1} entries; at most {MAX_ZIP_ENTRIES}"


def deep_entry(tmp: Path):
    path = tmp / "deep.zip"
    path.write_bytes(scene_zip({"a/" * 2500 + "x": b"x"}))
    return read(path), r"deep.zip: entry 'a/a/.*has a path too long to read"


def nested_entry(tmp: Path):
    path = tmp / "nested.zip"
    path.write_bytes(scene_zip({"a/" * 20 + "x.png": b"x"}))
    return read(path), r"nested.zip: entry .* is 21 folders deep; at most 12"


def npy_claiming_a_billion_rows(tmp: Path):
    folder = write_llff_scene(tmp / "llff")
    path = folder / "poses_bounds.npy"
    path.write_bytes(path.read_bytes().replace(b"(8, 17)", b"(1000000000, 17)"))
    return read(folder), r"1000000000 views; at most 1000 are read"


def poses_times_1e300(tmp: Path):
    folder = write_transforms_scene(tmp / "scene")
    meta = transforms()
    for frame in meta["frames"]:
        frame["transform_matrix"] = (np.asarray(frame["transform_matrix"]) * 1e300).tolist()
    (folder / "transforms.json").write_text(json.dumps(meta))
    return read(folder), r"transforms: frame 0's transform_matrix holds a value over 1e\+08"


def colmap_counts(stem: str, count: int, at: int = 0):
    def make(tmp: Path):
        pytest.importorskip("pycolmap")
        from tiny_captures import write_colmap_capture

        folder = write_colmap_capture(tmp / "c", "PINHOLE", size=(16, 16), distorted=False)
        path = folder / "sparse" / "0" / f"{stem}.bin"
        data = bytearray(path.read_bytes())
        data[at : at + 8] = count.to_bytes(8, "little")
        path.write_bytes(bytes(data))
        return read(folder), {
            "points3D": rf"points3D.bin (declares {count} points; at most 5000000|is truncated)",
            "images": r"images.bin is truncated",
        }[stem]

    return make


def points2d_offset() -> int:
    """Where the first image's point count sits in images.bin: after its count, id, pose,
    camera id and name ("view_000.png" and its NUL)."""
    return 8 + 4 + 7 * 8 + 4 + len("view_000.png") + 1


# -- scene files -----------------------------------------------------------------------------


def scene_file_with(change: Callable[[dict], None], message: str):
    def make(tmp: Path):
        from safetensors.torch import load, save

        from engines.nerf.scene_file import METADATA_KEY, load_scene_file, read_header

        data = tiny_scene_file()
        meta, _ = read_header(data, "x")
        change(meta)
        path = tmp / "bomb.nerf"
        path.write_bytes(save(load(data), metadata={METADATA_KEY: json.dumps(meta)}))
        return (lambda: load_scene_file(path)), message

    return make


def setter(**values) -> Callable[[dict], None]:
    def change(meta: dict) -> None:
        for key, value in values.items():
            section, _, name = key.partition("__")
            (meta[section] if name else meta)[name or section] = value

    return change


CASES = {
    "views x pixels": many_tiny_views,
    "transforms.json in a zip": big_transforms_in_a_zip,
    "transforms.json in a folder": big_transforms_in_a_folder,
    "zip entries": countless_entries,
    "zip path length": deep_entry,
    "zip path depth": nested_entry,
    "npy rows": npy_claiming_a_billion_rows,
    "poses x 1e300": poses_times_1e300,
    "points3D count": colmap_counts("points3D", 10**7),
    "points3D short": colmap_counts("points3D", 4_000_000),
    "points2D count": colmap_counts("images", 10**12, points2d_offset()),
    "samples": scene_file_with(
        setter(samples=10**6), r"bomb.nerf: samples is 1000000; a scene file holds 1 to 1024"
    ),
    "width": scene_file_with(setter(width=65536), r"width is 65536; a scene file holds 8 to 1024"),
    "grid": scene_file_with(setter(grid=4096), r"grid is 4096; a scene file holds 1 to 512"),
    "grid vs tensors": scene_file_with(
        setter(grid=512),
        r"tensor field\.\w+ has shape \[3, 2, 8, \d\]; its header says \[3, 2, 512",
    ),
    "grid_start": scene_file_with(
        setter(field__grid_start=10**5), r"field.grid_start is 100000; a scene file holds 1 to"
    ),
    "rank": scene_file_with(
        setter(field__appearance_rank=10**4), r"field.appearance_rank is 10000; .* 1 to 96"
    ),
    "occupancy": scene_file_with(
        setter(occupancy_size=10**4), r"occupancy_size is 10000; a scene file holds 1 to 256"
    ),
    "refiner": scene_file_with(
        setter(refiner__channels=10**5), r"refiner.channels is 100000; .* 1 to 256"
    ),
    "view index": scene_file_with(setter(test=[999]), r"test view 999 is not one of its 8 cameras"),
    "NaN": scene_file_with(
        setter(background=[float("nan"), 1.0, 1.0]), r"background is not a finite number"
    ),
    "string version": scene_file_with(
        setter(version="1.0"), r"bomb.nerf says it is scene format version '1.0', which is not"
    ),
    "missing field": scene_file_with(
        lambda meta: meta.pop("samples"), r"bomb.nerf is damaged: samples must be an integer"
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_crafted_nerf_input_is_refused_at_once_naming_the_limit(tmp_path, case):
    load, message = CASES[case](tmp_path)
    started = time.perf_counter()
    with pytest.raises(InputError, match=message) as err:
        load()
    assert time.perf_counter() - started < 2.0
    assert "\n" not in str(err.value) and str(tmp_path) not in str(err.value)


def test_no_crafted_nerf_input_grows_a_fresh_process_by_a_gigabyte(tmp_path):
    """Peak RSS is a high-water mark: measured in a process of its own, from after the
    imports and one valid read, over every crafted input in turn."""
    script = f"""
import json, resource, sys, tempfile
from pathlib import Path
sys.path[:0] = [{str(ROOT / "tests")!r}, {str(ROOT)!r}]
import test_nerf_hostile_inputs as cases
from engines.errors import InputError
from engines.nerf.scenes import load_scene
from tiny_nerf_inputs import tiny_scene_file, write_transforms_scene
from engines.nerf.scene_file import load_scene_bytes
import pycolmap, safetensors.torch
base = Path(tempfile.mkdtemp(dir={str(tmp_path)!r}))
load_scene(write_transforms_scene(base / "ok"), 16)
load_scene_bytes(tiny_scene_file())
idle = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
grown = {{}}
for name, make in sorted(cases.CASES.items()):
    folder = base / name.replace(" ", "_")
    folder.mkdir()
    load, _ = make(folder)
    try:
        load()
    except InputError:
        pass
    grown[name] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - idle) / 1024
print(json.dumps(grown))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ZSS_SCRATCH_DIR": str(tmp_path / "scratch")}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    grown = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(grown) == set(CASES)
    worst = max(grown, key=grown.get)
    assert grown[worst] < 1024, f"{worst}: peak RSS grew {grown[worst]:.0f} MB"


def test_a_working_set_under_the_cap_reads_as_uint8(tmp_path):
    """The cap is on views x working pixels, not on views: 8 views at 64 px read, as uint8."""
    from engines.nerf.capture_images import MAX_WORKING_PIXELS, check_working_set
    from engines.nerf.scenes import load_scene

    folder = write_transforms_scene(tmp_path / "scene")
    scene = load_scene(folder, 64)
    assert scene.images.shape == (8, 64, 64, 3) and scene.images.dtype == np.uint8
    side = int(math.isqrt(MAX_WORKING_PIXELS // 256))
    check_working_set(256, side, side, 1024)  # exactly at the cap: allowed
    with pytest.raises(InputError, match="257 views"):
        check_working_set(257, side, side, 1024)


def test_a_zip_refused_mid_extraction_leaves_nothing_behind(tmp_path):
    """An entry whose data is damaged is found only while extracting (its CRC): the
    half-extracted folder is removed with the refusal."""
    from engines.scratch import process_folder

    path = tmp_path / "damaged.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("scene/a.png", png_bytes(1))
        archive.writestr("scene/b.png", png_bytes(2))
    data = bytearray(path.read_bytes())
    start = data.index(b"IDAT", data.index(b"scene/b.png"))  # inside b.png, stored as is
    data[start : start + 4] = b"\xff" * 4
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="damaged.zip"):
        read(path)()
    assert not list(process_folder().glob("nerf-scene-*"))


def test_poses_bounds_of_strings_are_refused_naming_the_dtype(tmp_path):
    folder = write_llff_scene(tmp_path / "llff")
    np.save(folder / "poses_bounds.npy", poses_bounds().astype("U16"))
    with pytest.raises(InputError, match="poses_bounds.npy holds <U16 values"):
        read(folder)()


def test_a_failed_allocation_is_too_large_for_this_machine_naming_the_size(tmp_path, monkeypatch):
    from engines.nerf import scene_file
    from engines.nerf.capture_images import allocate

    with pytest.raises(InputError, match=r"The views need 2793967.7 GiB; that is too large"):
        allocate((10**6, 10**6, 1000, 3), np.uint8)  # 3 PB: malloc refuses at once

    def no_memory(*args, **kwargs):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8e10")

    monkeypatch.setattr(scene_file, "LatentNerf", no_memory)
    path = tmp_path / "big.nerf"
    path.write_bytes(tiny_scene_file())
    with pytest.raises(InputError, match=r"big.nerf \(0 MB\) needs more memory .* too large"):
        scene_file.load_scene_file(path)


def test_every_setting_a_scene_file_holds_is_bounded():
    """A setting added to FieldConfig or RefinerConfig needs its range in scene_header.py:
    files are read only with every header value bounded."""
    from dataclasses import fields

    from engines.nerf.field import FieldConfig
    from engines.nerf.refine import RefinerConfig
    from engines.nerf.scene_header import FIELD_LIMITS, REFINER_LIMITS

    assert set(FIELD_LIMITS) == {f.name for f in fields(FieldConfig)}
    assert set(REFINER_LIMITS) == {f.name for f in fields(RefinerConfig)}
