"""An OSError on the command line is one line naming the user's path (the input they gave, the
output they asked for), never one of our temp files (a `.x.zsc.*.part` beside it, the scratch
folder a recipe zip is unpacked into)."""

from __future__ import annotations

import errno
import json
import os
import zipfile

import pytest
from PIL import Image
from tiny_compression import compression_studio, tiny_amused_in, tiny_photo

from engines import files, recipes
from engines.cli import main
from engines.scratch import process_folder


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    studio, undo = compression_studio(tiny_amused_in(base), base / "zss-cache")
    yield studio
    undo()


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(tiny_photo(32, 32)).save(path)
    return path


def last_error(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), lines
    assert not any("Traceback" in line for line in lines)
    return lines[-1]


def no_temp_path(line: str) -> None:
    assert ".part" not in line and str(process_folder()) not in line, line


def test_a_missing_input_names_it(studio, tmp_path, capsys):
    missing = tmp_path / "nowhere" / "photo.png"
    argv = ["--device", "cpu", "compress", str(missing), "-o", str(tmp_path / "x.zsc")]
    assert main(argv) == 2
    line = last_error(capsys)
    assert "photo.png" in line
    no_temp_path(line)


def test_an_unwritable_output_folder_is_named_before_the_run(
    studio, photo, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(files.os, "access", lambda path, mode: False)
    out = tmp_path / "locked" / "x.zsc"
    assert main(["--device", "cpu", "compress", str(photo), "-o", str(out)]) == 2
    line = last_error(capsys)
    assert str(out.parent) in line and "no permission" in line
    no_temp_path(line)


def test_a_full_disk_names_the_output_not_its_temp_file(
    studio, photo, tmp_path, monkeypatch, capsys
):
    real = files.tempfile.NamedTemporaryFile

    def failing(*args, **kwargs):
        handle = real(*args, **kwargs)

        def write(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), handle.name)

        handle.write = write
        return handle

    monkeypatch.setattr(files.tempfile, "NamedTemporaryFile", failing)
    out = tmp_path / "new" / "garden.zsc"
    argv = ["--device", "cpu", "compress", str(photo), "-o", str(out), "--no-baselines"]
    assert main(argv) == 1
    line = last_error(capsys)
    assert line.startswith("error: No space left on device: ") and str(tmp_path / "new") in line
    no_temp_path(line)


def test_a_full_disk_while_unpacking_a_recipe_zip_names_the_zip(tmp_path, monkeypatch, capsys):
    bundle = tmp_path / "sent.zip"
    with zipfile.ZipFile(bundle, "w") as opened:
        opened.writestr("recipe.json", json.dumps({"engine": "compression", "params": {}}))

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(process_folder() / "x"))

    monkeypatch.setattr(recipes, "_extract", no_space)
    assert main(["--device", "cpu", "run", str(bundle), "-o", str(tmp_path / "out")]) == 1
    line = last_error(capsys)
    assert str(bundle) in line and "No space left on device" in line
    no_temp_path(line)
