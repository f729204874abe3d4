"""The NeRF engine's readers of a user's files, fed mutated files as in test_fuzz_readers.py
(truncations, bit flips, inserted bytes, JSON with swapped types, deep nesting, huge numbers;
a fixed seed, a few hundred cases each): transforms.json, poses_bounds.npy, COLMAP models
(binary and text), scene zips and `.nerf` scene files. Whatever comes in, only `InputError`
comes out."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from test_fuzz_readers import CASES, byte_mutations, json_mutations, only_input_errors
from tiny_nerf_inputs import (
    tiny_scene_file,
    transforms,
    transforms_zip,
    write_llff_scene,
    write_transforms_scene,
)

from engines.nerf.scene_file import load_scene_file
from engines.nerf.scenes import load_scene
from engines.scratch import process_folder

SIZE = 16  # the working resolution the scenes are read at


def read_scene(folder: Path):
    return lambda _: load_scene(folder, SIZE)


def huge_numbers(value: dict) -> Iterator[bytes]:
    """Integers too long to parse (5000 digits) or to convert to float (400 digits), in a
    transforms.json's number fields."""
    text = json.dumps(value)
    for digits in (5000, 400):
        big = "9" * digits
        yield text.replace('"camera_angle_x": 0.8', f'"camera_angle_x": {big}').encode()
        yield text.replace("1.0]]", f"{big}]]", 1).encode()
    yield text.replace('"v0"', "12345", 1).encode()  # a numeric file_path
    for name in ("v\\u0000", "x" * 5000, "a/" * 3000, "\\ud800"):  # NUL, too long, surrogate
        yield text.replace('"v0"', f'"{name}"', 1).encode()
    yield b'{"frames": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


def test_transforms_json(tmp_path):
    folder = write_transforms_scene(tmp_path / "scene")
    path = folder / "transforms.json"
    load_scene(folder, SIZE)  # the unmutated scene reads
    cases = [*huge_numbers(transforms()), *json_mutations(transforms(), random.Random(10))]
    refused = only_input_errors(read_scene(folder), path, iter(cases))
    assert refused > CASES // 4


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def test_poses_bounds_npy(tmp_path):
    folder = write_llff_scene(tmp_path / "llff")
    path = folder / "poses_bounds.npy"
    data = path.read_bytes()
    load_scene(folder, SIZE)
    poses = np.load(path)
    swapped = [
        npy_bytes(poses.astype("U32")),  # string dtypes
        npy_bytes(poses.astype(np.complex128)),
        npy_bytes(np.zeros(8, dtype=[("a", "f8", (17,))])),  # structured
        npy_bytes(poses * 1e300),
        npy_bytes(poses[:, :16]),
        npy_bytes(poses.reshape(-1)),
        data.replace(b"(8, 17)", b"(800000000, 17)"),  # a header claiming gigabytes
        data.replace(b"'<f8'", b"'|O'"),  # objects: pickles, refused unread
    ]
    cases = [*swapped, *byte_mutations(data, random.Random(11))]
    refused = only_input_errors(read_scene(folder), path, iter(cases))
    assert refused > CASES // 4


MODEL_FILES = {
    True: ("cameras.bin", "images.bin", "points3D.bin", "frames.bin", "rigs.bin"),
    False: ("cameras.txt", "images.txt", "points3D.txt"),
}


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "text"])
def test_colmap_models(tmp_path, binary):
    """Each model file mutated in turn; the binary ones are walked before pycolmap reads them
    (pycolmap itself trusts every count in them)."""
    pytest.importorskip("pycolmap")
    from tiny_captures import write_colmap_capture

    folder = write_colmap_capture(
        tmp_path / "c", "PINHOLE", size=(16, 16), distorted=False, binary=binary
    )
    load_scene(folder, SIZE)
    per_file = CASES * 3 // (2 * len(MODEL_FILES[binary]))
    for index, name in enumerate(MODEL_FILES[binary]):
        path = folder / "sparse" / "0" / name
        if not path.exists():
            continue  # rigs and frames: pycolmap 3.12 and later
        data = path.read_bytes()
        cases = byte_mutations(data, random.Random(20 + index), per_file)
        refused = only_input_errors(read_scene(folder), path, cases)
        path.write_bytes(data)
        assert refused > per_file // 4, name


def test_scene_zips(tmp_path):
    data = transforms_zip()
    path = tmp_path / "scene.zip"
    path.write_bytes(data)
    load_scene(path, SIZE)
    scratch = process_folder()
    refused = only_input_errors(
        lambda p: load_scene(p, SIZE), path, byte_mutations(data, random.Random(12))
    )
    assert refused > CASES // 4
    assert not list(scratch.glob("nerf-scene-*")), "an extraction was left behind"


def rebuilt(data: bytes, meta: dict) -> bytes:
    """The scene file's tensors with another header."""
    from safetensors.torch import load, save

    from engines.nerf.scene_file import METADATA_KEY

    return save(load(data), metadata={METADATA_KEY: json.dumps(meta, allow_nan=True)})


def header_mutations(data: bytes, rng: random.Random) -> Iterator[bytes]:
    from engines.nerf.scene_file import read_header

    meta, _ = read_header(data, "x")
    for case in json_mutations(meta, rng, CASES):
        try:
            mutated = json.loads(case)
        except (ValueError, RecursionError):
            continue  # text the safetensors writer would not take: byte mutations cover it
        if isinstance(mutated, dict):
            yield rebuilt(data, mutated)


@pytest.mark.parametrize("edited", [False, True], ids=["fitted", "edited"])
def test_scene_files(tmp_path, edited):
    data = tiny_scene_file(edited)
    path = tmp_path / "scene.nerf"
    path.write_bytes(data)
    load_scene_file(path)
    rng = random.Random(13 + edited)
    cases = [*byte_mutations(data, rng, CASES // 2), *header_mutations(data, rng)]
    refused = only_input_errors(load_scene_file, path, iter(cases))
    assert refused > CASES // 4
