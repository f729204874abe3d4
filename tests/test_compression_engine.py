"""The compression engine on a tiny aMUSEd (real classes, saved in the Hub layout), loaded
through the registry: exact round trips, rates from bytes, the model coder against its ideal
length, restoration, recipes, the CLI, and every bad input the issue lists."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from tiny_compression import compression_studio, tiny_amused_in, tiny_photo

from engines.base import Recipe
from engines.cli import main as cli_main
from engines.compression.bitstream import read_zsc, write_zsc
from engines.compression.coders import UNIFORM_SHARE
from engines.compression.restoration import maskgit_restore
from engines.compression.schedule import coding_groups
from engines.compression.token_model import UNKNOWN
from engines.errors import InputError, ModelUnavailable


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    studio, undo = compression_studio(tiny_amused_in(base), base / "zss-cache")
    yield studio.engine("compression")
    undo()


@pytest.fixture(scope="module")
def photo():
    return tiny_photo(72, 52)  # 5x4 tokens after padding to 80x64


@pytest.mark.parametrize("coder", ["fixed", "model"])
@pytest.mark.parametrize("k", [16, 8192])
def test_exact_round_trip_and_bpp_from_file_bytes(engine, photo, coder, k):
    result = engine.compress(photo, codebook_size=k, coder=coder, baselines=False)
    assert result.tokens.shape == (4, 5)
    assert result.tokens.min() >= 0 and result.tokens.max() < k
    decoded = engine.decompress(result.zsc)
    assert np.array_equal(decoded.tokens, result.tokens)
    assert np.array_equal(decoded.image, result.decoded)
    assert decoded.image.shape == photo.shape
    assert result.metrics["bpp"] == 8 * len(result.zsc) / (72 * 52)
    assert decoded.metrics["bpp"] == result.metrics["bpp"]
    header, payload = read_zsc(result.zsc)
    assert (header.width, header.height, header.codebook_size, header.coder) == (72, 52, k, coder)
    assert result.metrics["payload_bytes"] == len(payload)
    if coder == "fixed":
        assert len(payload) == -(-20 * int(np.log2(k)) // 8)


def test_model_coder_payload_is_close_to_its_ideal_length(engine):
    codec = engine.manager.load("compression").get("codec")
    encoded = codec.compress(tiny_photo(112, 80, seed=3), 16, "model")  # 7x5 tokens
    book, tokens = codec.codebook(16), encoded.tokens
    # the ideal length, recomputed from the model's own probabilities, pass by pass
    known = np.full(tokens.shape, UNKNOWN)
    ideal_bits = 0.0
    for group in coding_groups(*tokens.shape, encoded.header.passes):
        transformer = codec.model.probabilities(known, book, group)
        assert transformer.shape == (len(group), 16)
        assert np.allclose(transformer.sum(axis=1), 1.0)
        probs = (1 - UNIFORM_SHARE) * transformer + UNIFORM_SHARE / 16
        ideal_bits -= np.log2(probs[np.arange(len(group)), tokens.reshape(-1)[group]]).sum()
        known.reshape(-1)[group] = tokens.reshape(-1)[group]
    assert encoded.ideal_bits == pytest.approx(ideal_bits)
    payload_bits = 8 * encoded.payload_bytes
    assert ideal_bits - 1 <= payload_bits <= ideal_bits * 1.01 + 8 * 8


def test_restoration_fills_every_lost_token(engine, photo):
    result = engine.compress(photo, codebook_size=16, coder="fixed", baselines=False)
    restored = engine.restore_tokens(result.zsc, lost_fraction=0.4, seed=1, steps=3, original=photo)
    lost = restored.lost
    assert lost.sum() == round(0.4 * 20) == restored.metrics["lost_tokens"]
    codec = engine.manager.load("compression").get("codec")
    book = codec.codebook(16)
    tokens = codec.vq.encode(photo, book)
    filled = maskgit_restore(codec.model, tokens, lost, book, steps=3)
    assert (filled != UNKNOWN).all() and filled.max() < 16
    assert np.array_equal(filled[~lost], tokens[~lost])
    assert restored.restored.shape == restored.naive.shape == photo.shape
    assert np.array_equal(restored.intact, result.decoded)
    assert restored.metrics["reference"] == "original image"
    assert {"psnr_restored_db", "psnr_naive_db", "psnr_intact_db"} <= set(restored.metrics)
    nothing_lost = engine.restore_tokens(result.zsc, lost_fraction=0.0)
    assert np.array_equal(nothing_lost.restored, result.decoded)


def test_baselines_are_measured_beside_ours(engine):
    image = tiny_photo(96, 64)
    result = engine.compress(image, codebook_size=8192, coder="fixed")
    codecs = [row["codec"] for row in result.rates]
    assert codecs[0] == "VQGAN tokens (ours)"
    assert {"JPEG smallest", "WebP smallest"} <= set(codecs)
    assert all(row["psnr_db"] > 0 and row["bytes"] > 0 for row in result.rates)
    for base in result.baselines:
        assert base.decoded.shape == image.shape
        if base.mode == "same bytes":
            assert base.nbytes <= len(result.zsc)


def test_recipe_reproduces_the_file(engine, photo, tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    result = engine.compress(str(path), codebook_size=16, coder="fixed", baselines=False)
    files = result.save(tmp_path / "out")
    assert (tmp_path / "out" / "compressed.zsc").read_bytes() == result.zsc
    recipe = Recipe.load(tmp_path / "out" / "recipe.json")
    assert recipe.params["task"] == "compress" and recipe.models["amused"]
    assert engine.run_recipe(recipe).zsc == result.zsc
    assert sorted(path.name for path in files) == [
        "compressed.zsc",
        "decoded.png",
        "image-photo.png",  # inputs/: the photo the recipe names
        "metrics.json",
        "recipe.json",
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"codebook_size": 100}, "Unknown codebook size K 100"),
        ({"codebook_size": 16384}, "Unknown codebook size K 16384"),
        ({"coder": "huffman"}, "Unknown entropy coder"),
        ({"image": np.zeros((0, 4, 3), np.uint8)}, "empty"),
        ({"image": None}, "No image"),
    ],
)
def test_bad_compress_requests(engine, photo, kwargs, message):
    args = {"image": photo, "codebook_size": 16, "coder": "fixed", "baselines": False} | kwargs
    with pytest.raises(InputError, match=message):
        engine.compress(**args)


def test_not_an_image(engine, tmp_path):
    path = tmp_path / "photo.png"
    path.write_bytes(b"GIF89a garbage")
    with pytest.raises(InputError, match="not an image"):
        engine.compress(str(path), baselines=False)


@pytest.fixture(scope="module")
def files(engine, photo):
    return {
        coder: engine.compress(photo, codebook_size=16, coder=coder, baselines=False).zsc
        for coder in ("fixed", "model")
    }


def _reheader(data: bytes, **changes) -> bytes:
    header, payload = read_zsc(data)
    return write_zsc(header.__class__(**(header.__dict__ | changes)), payload)


@pytest.mark.parametrize("coder", ["fixed", "model"])
@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda d: d[:20], "truncated"),
        (lambda d: d[:-1], "truncated or corrupt|checksum|cannot be range-decoded"),
        (lambda d: b"RIFF" + d[4:], "not a .zsc file"),
        (lambda d: d[:3] + b"\x09" + d[4:], "format version 9"),
        (lambda d: _reheader(d, model_fingerprint=b"\x01" * 8), "made with model"),
        (lambda d: _reheader(d, checksum=12345), "checksum"),
        (lambda d: _reheader(d, codebook_id=99), "codebook computed here differs"),
        (lambda d: d[:-4] + bytes(b ^ 0xFF for b in d[-4:]), "checksum|range-decoded"),
    ],
)
def test_bad_files(engine, files, coder, corrupt, message):
    with pytest.raises(InputError, match=message):
        engine.decompress(corrupt(files[coder]))


def test_missing_and_empty_files(engine, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        engine.decompress(tmp_path / "nothing.zsc")
    (tmp_path / "empty.zsc").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        engine.decompress(tmp_path / "empty.zsc")


def test_cli_compress_and_decompress(engine, photo, tmp_path, capsys):
    source = tmp_path / "in.png"
    Image.fromarray(photo).save(source)
    out = tmp_path / "out.zsc"
    args = ["--device", "cpu", "compress", str(source), "-o", str(out), "--codebook", "16"]
    decoded = tmp_path / "decoded.png"
    assert cli_main(args + ["--coder", "model", "--no-baselines", "--decoded", str(decoded)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["metrics"]["file_bytes"] == len(out.read_bytes())
    assert [row["codec"] for row in report["rates"]] == ["VQGAN tokens (ours)"]
    assert read_zsc(out.read_bytes())[0].coder == "model"
    assert np.asarray(Image.open(decoded)).shape == photo.shape
    restored = tmp_path / "restored"
    restore = ["restore-tokens", str(out), "--loss", "0.3", "--seed", "2", "--steps", "2"]
    restore += ["--original", str(source), "-o", str(restored)]
    assert cli_main(["--device", "cpu"] + restore) == 0
    measured = json.loads(capsys.readouterr().out)
    assert measured["lost_tokens"] == 6 and measured["reference"] == "original image"
    assert Recipe.load(restored / "recipe.json").params["lost_fraction"] == 0.3
    png = tmp_path / "out.png"
    assert cli_main(["--device", "cpu", "decompress", str(out), "-o", str(png)]) == 0
    assert np.asarray(Image.open(png)).shape == photo.shape
    with pytest.raises(SystemExit) as refused:  # argparse knows the declared choices
        cli_main(args[:-1] + ["100"])
    assert refused.value.code == 2
    assert "invalid choice: 100" in capsys.readouterr().err
    (tmp_path / "bad.zsc").write_bytes(b"hello")
    assert cli_main(["--device", "cpu", "decompress", str(tmp_path / "bad.zsc")]) == 2


def _write_recipe(path, params):
    path.write_text(json.dumps({"engine": "compression", "params": params}), encoding="utf-8")
    return path


def test_a_recipe_runs_again_from_the_cli(engine, photo, tmp_path):
    source = tmp_path / "photo.png"
    Image.fromarray(photo).save(source)
    params = {"task": "compress", "image": str(source), "codebook_size": 16, "coder": "fixed"}
    recipe = _write_recipe(tmp_path / "compress.json", params | {"baselines": False})
    out = tmp_path / "compressed"
    given = ["--input", f"image={source}"]  # a hand-written recipe records no hash: given
    assert cli_main(["--device", "cpu", "run", str(recipe), *given, "-o", str(out)]) == 0
    zsc = (out / "compressed.zsc").read_bytes()
    assert zsc == engine.compress(str(source), codebook_size=16, baselines=False).zsc
    assert Recipe.load(out / "recipe.json").params["task"] == "compress"

    params = {"task": "restore", "file": str(out / "compressed.zsc"), "lost_fraction": 0.4}
    recipe = _write_recipe(tmp_path / "restore.json", params | {"seed": 1, "steps": 2})
    out = tmp_path / "restored"
    given = ["--input", f"file={params['file']}"]
    assert cli_main(["--device", "cpu", "run", str(recipe), *given, "-o", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["lost_tokens"] == round(0.4 * 20)
    assert {"restored.png", "naive.png", "intact.png", "metrics.json"} <= {
        path.name for path in out.iterdir()
    }
    with pytest.raises(InputError, match="names its task in params; known: compress"):
        engine.request_from_recipe(Recipe("compression", {"file": "f.zsc"}))
    with pytest.raises(InputError, match=r"Unknown parameters for this engine: \['loss'\]"):
        engine.request_from_recipe(Recipe("compression", {"task": "restore", "loss": 0.1}))


def test_lost_fraction_outside_its_range_is_refused_before_any_model_loads(tmp_path, capsys):
    from engines.studio import Studio

    studio = Studio(device="cpu")  # the registry override of the module's fixture still holds
    fresh = studio.engine("compression")
    with pytest.raises(InputError, match=r"fraction lost is 0\.99; it must be 0 to 0\.95"):
        fresh.restore_tokens(b"not read", lost_fraction=0.99)
    with pytest.raises(InputError, match="fraction lost is -0.1"):
        fresh.run_recipe(
            Recipe("compression", {"task": "restore", "file": "f", "lost_fraction": -0.1})
        )
    assert not studio.manager.is_loaded("compression")
    zsc = tmp_path / "never-read.zsc"
    assert cli_main(["--device", "cpu", "restore-tokens", str(zsc), "--loss", "1.5"]) == 2
    assert "fraction lost is 1.5; it must be 0 to 0.95" in capsys.readouterr().err


def test_missing_vqvae_folder_is_named(tmp_path):
    folder = tmp_path / "no-vqvae"
    folder.mkdir()
    for part in tiny_amused_in(tmp_path.parent).iterdir():
        if part.name != "vqvae":
            (folder / part.name).symlink_to(part)
    studio, undo = compression_studio(folder, tmp_path / "cache")
    try:
        with pytest.raises(ModelUnavailable, match=r"no vqvae/ folder in .*no-vqvae"):
            studio.engine("compression").compress(np.zeros((32, 32, 3), np.uint8))
    finally:
        undo()
