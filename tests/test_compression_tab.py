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
from engines.compression.bitstream import read_zsc
from tabs import compression as tab


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
        "Codebook size K (log2 K bits per token before entropy coding)",
        "Entropy coder",
    ]
    assert labels[deps["restore_tokens"]["inputs"][0]].startswith(".zsc file")
    assert deps["compress"]["outputs"][1] == deps["restore_tokens"]["inputs"][0]
    gpu_events = {fn.api_name for fn in demo.fns.values() if fn.concurrency_id == "gpu"}
    assert {"compress", "decompress", "restore_tokens"} <= gpu_events


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
        decoded, zsc, rates, gallery, metrics, recipe = client.predict(
            handle_file(str(source)), 16, "model", api_name="/compress"
        )
        data = Path(zsc).read_bytes()
        header, _ = read_zsc(data)
        assert (header.width, header.height, header.codebook_size) == (72, 52, 16)
        rows = {row[0]: row for row in rates["data"]}
        assert rows["VQGAN tokens (ours)"][2] == len(data)
        assert rows["VQGAN tokens (ours)"][3] == round(8 * len(data) / (72 * 52), 4)
        assert {"JPEG smallest", "WebP smallest"} <= set(rows)
        assert len(gallery) == 2 + sum(1 for name in rows if name != "VQGAN tokens (ours)")
        assert np.asarray(Image.open(decoded)).shape == (52, 72, 3)

        again, file_rows = client.predict(handle_file(zsc), api_name="/decompress")
        assert np.array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(decoded)))
        assert dict(file_rows["data"])["bpp"] == round(8 * len(data) / (72 * 52), 4)

        restored, naive, restore_rows = client.predict(
            handle_file(zsc), 0.3, 1, handle_file(str(source)), api_name="/restore_tokens"
        )
        measured = dict(restore_rows["data"])
        assert measured["lost_tokens"] == 6 and measured["reference"] == "original image"
        assert np.asarray(Image.open(restored)).shape == (52, 72, 3)

        junk = tmp_path / "junk.zsc"
        junk.write_bytes(b"definitely not a zsc file")
        with pytest.raises(AppError, match="not a .zsc file"):
            client.predict(handle_file(str(junk)), api_name="/decompress")
        with pytest.raises(AppError, match="not in the list of choices"):
            client.predict(handle_file(str(source)), 100, "fixed", api_name="/compress")
