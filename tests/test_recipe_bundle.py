"""A recipe is a file someone sent: it runs only on the files its own folder or zip holds, each
checked by the sha256 it records. A crafted recipe that names a file of this machine (an absolute
path, a `..` escape, a symbolic link in inputs/, a file parameter with no recorded hash) is
refused in one line, before anything runs, and nothing is copied into -o."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from tiny_compression import tiny_photo

from engines.base import Recipe
from engines.cli import main
from engines.errors import InputError
from engines.hashing import file_sha256
from engines.pins import check_recorded
from engines.registry import LOCAL_REVISION, Registry


@pytest.fixture
def secret(tmp_path) -> Path:
    """A file of 'this machine' that a crafted recipe tries to have copied into its bundle
    (an image, so that the compress request would take it)."""
    path = tmp_path / "private" / "secret.png"
    path.parent.mkdir()
    Image.fromarray(tiny_photo(40, 24, seed=7)).save(path)
    return path


def compress_recipe(image: str, sha256: str | None, name: str = "secret.png") -> dict:
    inputs = {} if sha256 is None else {"image": {"name": name, "sha256": sha256}}
    params = {"task": "compress", "image": image, "codebook_size": 16, "coder": "fixed"}
    return {"engine": "compression", "params": params, "inputs": inputs}


def write_recipe(folder: Path, data: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "recipe.json"
    path.write_text(json.dumps(data))
    return path


def refused_by_run(recipe: Path, out: Path, capsys, *extra: str) -> str:
    """`zsstudio run` on the recipe: exit 2, one line naming what is wrong, nothing in -o."""
    assert main(["--device", "cpu", "run", str(recipe), "-o", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert not out.exists() or not any(out.rglob("*")), sorted(out.rglob("*"))
    return err


def test_an_absolute_path_is_refused_even_with_the_right_hash(tmp_path, secret, capsys):
    recipe = write_recipe(tmp_path / "sent", compress_recipe(str(secret), file_sha256(secret)))
    err = refused_by_run(recipe, tmp_path / "out", capsys)
    assert "a path on this machine, not a file in its bundle" in err
    assert "--input image=PATH" in err


def test_a_home_relative_path_is_refused(tmp_path, capsys):
    recipe = write_recipe(tmp_path / "sent", compress_recipe("~/secret.png", "0" * 64))
    assert "a path on this machine" in refused_by_run(recipe, tmp_path / "out", capsys)


@pytest.mark.parametrize("escape", ["../private/secret.png", "inputs/../../private/secret.png"])
def test_a_dot_dot_escape_is_refused(tmp_path, secret, escape, capsys):
    recipe = write_recipe(tmp_path / "sent", compress_recipe(escape, file_sha256(secret)))
    assert (recipe.parent / escape).resolve() == secret.resolve()  # it would reach the secret
    err = refused_by_run(recipe, tmp_path / "out", capsys)
    assert "`..` leads out of its bundle" in err


def test_a_symlink_in_inputs_is_refused(tmp_path, secret, capsys):
    recipe = write_recipe(tmp_path / "sent", compress_recipe("inputs/image-x.png", "0" * 64))
    (recipe.parent / "inputs").mkdir()
    (recipe.parent / "inputs" / "image-x.png").symlink_to(secret)
    data = compress_recipe("inputs/image-x.png", file_sha256(secret))
    recipe.write_text(json.dumps(data))
    err = refused_by_run(recipe, tmp_path / "out", capsys)
    assert "is a symbolic link (image-x.png)" in err


def test_a_symlinked_inputs_folder_is_refused(tmp_path, secret):
    recipe = write_recipe(
        tmp_path / "sent", compress_recipe("inputs/secret.png", file_sha256(secret))
    )
    (recipe.parent / "inputs").symlink_to(secret.parent, target_is_directory=True)
    with pytest.raises(InputError, match=r"is a symbolic link \(inputs\)"):
        Recipe.load(recipe)


def test_a_file_parameter_without_a_recorded_hash_is_refused(tmp_path, secret, capsys):
    recipe = write_recipe(tmp_path / "sent", compress_recipe(str(secret), None))
    err = refused_by_run(recipe, tmp_path / "out", capsys)
    assert "records no sha256 for it" in err and "--input image=PATH" in err
    relative = write_recipe(tmp_path / "rel", compress_recipe("secret.png", None))
    (relative.parent / "secret.png").write_bytes(secret.read_bytes())
    with pytest.raises(InputError, match="records no sha256 for it"):
        Recipe.load(relative)  # inside the bundle, but unchecked: refused too


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "x.png"}, "needs the file's `sha256`"),
        ({"name": "x.png", "sha256": "abc"}, "needs the file's `sha256`"),
        ({"name": "x.png", "sha256": 5}, "needs the file's `sha256`"),
        ("x.png", "needs the file's `sha256`"),
    ],
)
def test_an_inputs_entry_without_a_readable_hash_is_refused(tmp_path, entry, message):
    data = compress_recipe("inputs/image-x.png", None)
    data["inputs"] = {"image": entry}
    with pytest.raises(InputError, match=message):
        Recipe.load(write_recipe(tmp_path / "sent", data))


def test_an_inputs_entry_for_a_parameter_that_is_no_file_is_refused(tmp_path):
    data = compress_recipe("inputs/image-x.png", None)
    data["inputs"] = {"codebook_size": {"name": "x", "sha256": "0" * 64}}
    with pytest.raises(InputError, match="'codebook_size', which is not a file parameter"):
        Recipe.load(write_recipe(tmp_path / "sent", data))


def test_a_zip_naming_a_path_outside_it_is_refused(tmp_path, secret, capsys):
    bundle = tmp_path / "sent.zip"
    with zipfile.ZipFile(bundle, "w") as opened:
        data = compress_recipe(str(secret), file_sha256(secret))
        opened.writestr("recipe.json", json.dumps(data))
    err = refused_by_run(bundle, tmp_path / "out", capsys)
    assert "a path on this machine" in err


def test_the_user_may_give_the_file_on_the_command_line(tmp_path, secret):
    """--input is typed by the user: a recorded input is checked against its hash, an
    unrecorded file parameter (a NeRF scene folder has no hash) is taken as given."""
    recorded = write_recipe(
        tmp_path / "a", compress_recipe("inputs/image-x.png", file_sha256(secret))
    )
    loaded = Recipe.load(recorded, {"image": str(secret)})
    assert loaded.params["image"] == str(secret.resolve())
    unrecorded = write_recipe(tmp_path / "b", compress_recipe("/elsewhere/x.png", None))
    assert Recipe.load(unrecorded, {"image": str(secret)}).params["image"] == str(secret)
    with pytest.raises(InputError, match="no such file or folder"):
        Recipe.load(unrecorded, {"image": str(tmp_path / "missing.png")})
    with pytest.raises(InputError, match="no input 'voice'; its file inputs: image"):
        Recipe.load(unrecorded, {"voice": str(secret)})


def test_defaults_and_in_memory_markers_are_not_file_names(tmp_path):
    scene = {"engine": "nerf", "params": {"task": "reconstruct", "scene": "example"}}
    assert Recipe.load(write_recipe(tmp_path / "n", scene)).params["scene"] == "example"
    marker = compress_recipe("<in-memory image>", None)
    assert Recipe.load(write_recipe(tmp_path / "m", marker)).params["image"].startswith("<")


def test_a_bundled_input_inside_its_folder_still_runs_from_anywhere(tmp_path, secret, monkeypatch):
    folder = tmp_path / "bundle"
    write_recipe(folder, compress_recipe("inputs/image-secret.png", file_sha256(secret)))
    (folder / "inputs").mkdir()
    (folder / "inputs" / "image-secret.png").write_bytes(secret.read_bytes())
    monkeypatch.chdir(tmp_path)  # a relative path to the bundle resolves too
    loaded = Recipe.load(Path("bundle"))
    assert loaded.params["image"] == str((folder / "inputs" / "image-secret.png").resolve())


@pytest.mark.parametrize(
    "entry",
    [
        {"source": "local", "revision": LOCAL_REVISION + "/home/me/clip"},
        {"source": "local", "revision": LOCAL_REVISION + "a" * 63},
        {"source": "/home/me/clip", "revision": LOCAL_REVISION + "a" * 64},
        {"source": "file:///home/me/clip", "revision": "main"},
    ],
)
def test_a_models_table_naming_a_local_path_is_refused(entry):
    with pytest.raises(InputError, match="not by a path"):
        check_recorded(Registry.load(), "gan", {"clip": entry})


def test_a_models_table_recording_a_local_copy_by_its_hash_is_read():
    entry = {"source": "local", "revision": LOCAL_REVISION + "a" * 64}
    assert check_recorded(Registry.load(), "gan", {"clip": entry}) == {"clip": entry}
