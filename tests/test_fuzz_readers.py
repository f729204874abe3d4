"""Every reader of a user's file, fed mutated files (truncations, bit flips, inserted bytes,
JSON with swapped types, deep nesting and huge numbers; a fixed seed, a few hundred cases each):
whatever comes in, only `InputError` comes out, naming the file where the reader has one."""

from __future__ import annotations

import io
import json
import random
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from engines.errors import InputError

CASES = 200


def byte_mutations(data: bytes, rng: random.Random, count: int = CASES) -> Iterator[bytes]:
    """Truncations, 1-8 flipped bits, and inserted or deleted runs of bytes."""
    for case in range(count):
        kind = case % 3
        if kind == 0:
            yield data[: rng.randrange(len(data))]
        elif kind == 1:
            mutated = bytearray(data)
            for _ in range(rng.randint(1, 8)):
                mutated[rng.randrange(len(mutated))] ^= 1 << rng.randrange(8)
            yield bytes(mutated)
        else:
            at = rng.randrange(len(data))
            run = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
            yield data[:at] + run + data[at + rng.randint(0, 16) :]


ODD_VALUES = [None, True, -1, 0, 2**70, 1e308, float("nan"), "", "x" * 50, [], {}, [1, "a"]]


def json_mutations(value, rng: random.Random, count: int = CASES) -> Iterator[bytes]:
    """The JSON with one value swapped for another type, plus deep nesting and 5000-digit
    numbers, plus byte-level mutations of its text."""
    text = json.dumps(value).encode()
    yield b"[" * 100_000 + b"]" * 100_000
    yield b'{"engine": "layout", "params": {"seed": ' + b"9" * 5000 + b"}}"
    yield b'{"engine": "layout", "params": {}, "seed": ' + b"1" * 5000 + b"}"
    for case in range(count):
        if case % 2:
            yield next(byte_mutations(text, rng, 1))
            continue
        mutated = json.loads(text)
        _swap_one(mutated, rng)
        yield json.dumps(mutated, allow_nan=True).encode()


def _swap_one(node, rng: random.Random) -> None:
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            return
        key = rng.choice(keys)
        child = node[key]
        if isinstance(child, dict | list) and child and rng.random() < 0.6:
            node = child
            continue
        node[key] = rng.choice(ODD_VALUES)
        return


def only_input_errors(read: Callable[[Path], object], path: Path, cases: Iterator[bytes]) -> int:
    """Write each case to `path` and read it; anything but success or InputError fails the test
    with the case that caused it. Returns how many were refused."""
    refused = 0
    for index, data in enumerate(cases):
        path.write_bytes(data)
        try:
            read(path)
        except InputError as err:
            refused += 1
            assert "Traceback" not in str(err)
        except Exception as err:  # noqa: BLE001 - what this test is for
            kept = path.with_name(f"failing-{index}{path.suffix}")
            kept.write_bytes(data)
            pytest.fail(f"case {index} ({kept}): {type(err).__name__}: {err}"[:2000])
    return refused


RECIPES = {
    "layout": {"prompt": "a cat", "boxes": [["a cat", 1, 2, 30, 40]], "steps": 20, "width": 256},
    "compression": {"task": "compress", "image": "PHOTO", "codebook_size": 256, "coder": "model"},
    "gan": {"task": "adapt", "source": "a cat", "target": "a dog", "iterations": 3},
    "nerf": {"task": "reconstruct", "scene": "example", "steps": 10},
    "video": {
        "prompt": "a robot",
        "subject_phrase": "robot",
        "keyframes": [[0, 0.1, 0.1, 0.5, 0.5]],
    },
    "speech": {"task": "tts", "text": "hello", "voice": "VOICE"},
}
"""A valid recipe of each engine (PHOTO and VOICE stand for real files the test writes)."""


@pytest.mark.parametrize("engine_name", sorted(RECIPES))
def test_recipe_json_files(tmp_path, engine_name):
    """Read, then turned into the engine's request and validated (no model is loaded)."""
    from engines.base import Recipe
    from engines.studio import Studio

    studio = Studio(device="cpu")

    def read(path: Path) -> None:
        recipe = Recipe.load(path)
        studio.engine(recipe.engine).request_from_recipe(recipe).validate()

    import soundfile as sf
    from PIL import Image

    from engines.hashing import file_sha256

    (tmp_path / "inputs").mkdir()
    photo, voice = tmp_path / "inputs" / "photo.png", tmp_path / "inputs" / "voice.wav"
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(photo)
    rate = 16_000
    sf.write(voice, 0.3 * np.sin(2 * np.pi * 220 * np.arange(2 * rate) / rate), rate)
    files = {"PHOTO": photo, "VOICE": voice}  # in the bundle, named relative to recipe.json
    params, inputs = {}, {}
    for name, value in RECIPES[engine_name].items():
        if isinstance(value, str) and value in files:
            value, file = f"inputs/{files[value].name}", files[value]
            inputs[name] = {"name": file.name, "sha256": file_sha256(file)}
        params[name] = value
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps({"engine": engine_name, "params": params, "inputs": inputs}))
    read(path)  # the unmutated recipe is valid
    recipe = {
        "engine": engine_name,
        "params": params,
        "models": {"main": {"repo": "x/y", "revision": "abc"}},
        "seed": 7,
        "version": "0.1.0",
        "inputs": inputs,
    }
    cases = json_mutations(recipe, random.Random(engine_name), CASES // 2)
    refused = only_input_errors(read, tmp_path / "recipe.json", cases)
    assert refused > CASES // 8


def test_recipe_zips(tmp_path):
    from engines.base import Recipe

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr(
            "recipe.json",
            json.dumps(
                {
                    "engine": "speech",
                    "params": {"voice": "inputs/v.wav"},
                    "inputs": {"voice": {"name": "v.wav", "sha256": "0" * 64}},
                }
            ),
        )
        bundle.writestr("inputs/v.wav", b"RIFF" + b"\0" * 100)
    only_input_errors(
        Recipe.load, tmp_path / "recipe.zip", byte_mutations(buffer.getvalue(), random.Random(1))
    )


def test_zsc_files(tmp_path):
    from engines.compression.bitstream import ZscHeader, read_zsc, write_zsc

    header = ZscHeader(
        width=64,
        height=48,
        codebook_size=256,
        coder="fixed",
        model_id="amused/amused-512",
        model_fingerprint=b"\1" * 8,
        codebook_id=3,
        checksum=12345,
    )
    data = write_zsc(header, bytes(range(40)))
    only_input_errors(
        lambda path: read_zsc(path.read_bytes()),
        tmp_path / "x.zsc",
        byte_mutations(data, random.Random(2)),
    )


def test_generator_checkpoints(tmp_path):
    from tiny_gan import save_tiny_generator

    from engines.gan.checkpoint import load_generator

    data = save_tiny_generator(tmp_path / "tiny.pt", size=8).read_bytes()
    only_input_errors(
        load_generator, tmp_path / "mutated.pt", byte_mutations(data, random.Random(3), 120)
    )


def test_audio_files(tmp_path):
    import soundfile as sf

    from engines.speech.audio import read_clip

    rate = 16_000
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(rate // 4) / rate)
    for fmt in ("WAV", "FLAC"):
        buffer = io.BytesIO()
        sf.write(buffer, tone.astype(np.float32), rate, format=fmt)
        only_input_errors(
            lambda path: read_clip(str(path), "voice"),
            tmp_path / f"voice.{fmt.lower()}",
            byte_mutations(buffer.getvalue(), random.Random(4), CASES // 2),
        )


def test_image_files(tmp_path):
    from PIL import Image

    from engines.compression.images import load_rgb

    pixels = (np.arange(24 * 16 * 3) % 251).astype(np.uint8).reshape(24, 16, 3)
    for fmt in ("PNG", "JPEG", "WEBP"):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format=fmt)
        only_input_errors(
            lambda path: load_rgb(str(path)),
            tmp_path / f"photo.{fmt.lower()}",
            byte_mutations(buffer.getvalue(), random.Random(5), CASES // 2),
        )
