"""The Image compression tab: wiring, shipped examples, and the launched app called through
gradio_client (compress, decompress, restore_tokens, and a bad file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from app_server import served
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image
from tiny_compression import compression_studio, tiny_amused_in, tiny_photo

import app
from engines.compression import CompressRequest, RestoreRequest
from engines.compression.bitstream import read_zsc
from engines.compression.codebook import CODEBOOK_SIZES
from engines.compression.restoration import MAX_LOSS
from engines.fields import declaration
from tabs import compression as tab
from tabs.forms import elem_id


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    studio, undo = compression_studio(tiny_amused_in(base), base / "zss-cache")
    yield app.build_demo(tabs=["compression"], studio=studio)
    undo()


def test_tab_wiring(demo):
    config = demo.get_config_file()
    deps = {d["api_name"]: d for d in config["dependencies"] if d.get("api_name")}
    assert {"compress", "decompress", "restore_tokens"} <= set(deps)
    labels = {c["id"]: c["props"].get("label") for c in config["components"]}
    assert [labels[i] for i in deps["compress"]["inputs"]] == [
        "Photo (up to 2048 px a side)",
        "Codebook size K",
        "Entropy coder",
        "K-means",
    ]
    assert labels[deps["restore_tokens"]["inputs"][0]].startswith(".zsc file")
    # the page's compress event fills the restore section's file (the API's returns its own)
    assert deps["compress_in_tab"]["outputs"][1] == deps["restore_tokens"]["inputs"][0]
    assert deps["compress"]["inputs"][0] == deps["restore_tokens"]["inputs"][3]
    assert [labels[i] for i in deps["restore_tokens"]["inputs"][1:3]] == ["Fraction lost", "Seed"]
    assert len(deps["compress"]["outputs"]) == 7 and len(deps["restore_tokens"]["outputs"]) == 3
    assert len(deps["decompress"]["inputs"]) == 1 and len(deps["decompress"]["outputs"]) == 2
    gpu_events = {fn.api_name for fn in demo.fns.values() if fn.concurrency_id == "gpu"}
    assert {"compress", "decompress", "restore_tokens"} <= gpu_events


def _props(demo, request_type, name):
    wanted = elem_id(request_type, name)
    config = demo.get_config_file()
    return next(c["props"] for c in config["components"] if c["props"].get("elem_id") == wanted)


def test_controls_come_from_the_declarations(demo):
    spec, default = declaration(RestoreRequest, "lost_fraction")
    box = _props(demo, RestoreRequest, "lost_fraction")  # no bounds: the request says why
    assert (box.get("minimum"), box.get("maximum")) == (None, None) and (spec.low, spec.high) == (
        0,
        MAX_LOSS,
    )
    assert box["info"].endswith(spec.range_text()) and box["value"] == default
    spec, default = declaration(CompressRequest, "codebook_size")
    dropdown = _props(demo, CompressRequest, "codebook_size")
    assert [value for _, value in dropdown["choices"]] == list(spec.choices) == list(CODEBOOK_SIZES)
    assert dropdown["value"] == default
    coder = _props(demo, CompressRequest, "coder")
    assert coder["value"] == declaration(CompressRequest, "coder")[1] == "fixed"


def test_examples_use_the_declared_defaults():
    defaults = [declaration(CompressRequest, name)[1] for name in ("codebook_size", "coder")]
    rows = tab._examples()
    assert [Path(row[0]).name for row in rows] == list(tab.EXAMPLES)
    assert all(row[1:] == defaults for row in rows)


def test_examples_are_shipped_photos():
    for name in tab.EXAMPLES:
        path = tab.ASSETS / name
        with Image.open(path) as picture:
            assert picture.format == "PNG" and min(picture.size) >= 256


@pytest.mark.e2e
def test_end_to_end_through_gradio_client(demo, tmp_path):
    source = tmp_path / "photo.png"
    Image.fromarray(tiny_photo(72, 52)).save(source)
    with served(demo) as url:
        client = Client(url, verbose=False)
        decoded, zsc, rates, gallery, metrics, recipe, rd_plot = client.predict(
            handle_file(str(source)), 16, "model", api_name="/compress"
        )
        data = Path(zsc).read_bytes()
        header, _ = read_zsc(data)
        assert (header.width, header.height, header.codebook_size) == (72, 52, 16)
        rows = {row[0]: row for row in rates["data"]}
        assert rows["VQGAN tokens (ours)"][2] == len(data)
        assert rows["VQGAN tokens (ours)"][3] == float(f"{8 * len(data) / (72 * 52):.4g}")
        assert {"JPEG smallest", "WebP smallest"} <= set(rows)
        assert len(gallery) == 2 + sum(1 for name in rows if name != "VQGAN tokens (ours)")
        assert np.asarray(Image.open(decoded)).shape == (52, 72, 3)
        assert Path(rd_plot).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

        again, file_rows = client.predict(handle_file(zsc), api_name="/decompress")
        assert np.array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(decoded)))
        assert file_rows["bpp"] == 8 * len(data) / (72 * 52)  # the raw metrics

        restored, naive, restore_rows = client.predict(
            handle_file(zsc), 0.3, 1, handle_file(str(source)), api_name="/restore_tokens"
        )
        measured = restore_rows
        assert measured["lost_tokens"] == 6 and measured["reference"] == "original image"
        assert np.asarray(Image.open(restored)).shape == (52, 72, 3)
        _, _, restore_rows = client.predict(  # the declared top of the range, past the old 0.9
            handle_file(zsc), MAX_LOSS, 1, None, api_name="/restore_tokens"
        )
        assert restore_rows["lost_tokens"] == 19  # one of 20 always survives

        junk = tmp_path / "junk.zsc"
        junk.write_bytes(b"definitely not a zsc file")
        with pytest.raises(AppError, match="not a .zsc file"):
            client.predict(handle_file(str(junk)), api_name="/decompress")
        with pytest.raises(AppError, match="Unknown codebook size K 100; choose one of 16, 32"):
            client.predict(handle_file(str(source)), 100, "fixed", api_name="/compress")


def test_the_rate_table_keeps_significant_figures_of_small_values():
    from tabs.compression import _rate_rows

    row = {"codec": "x", "setting": "q", "bytes": 3, "bpp": 2.2e-05, "psnr_db": 31.2468}
    (shown,) = _rate_rows([row | {"ms_ssim": None}])
    assert shown[3:] == [2.2e-05, 31.25, None]
