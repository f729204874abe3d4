"""Recipes that carry their inputs: recorded hashes, bundles (zip and folder), `--input`, the
zip refusals, and a recipe downloaded from the running app re-run after the server's copy of
the upload is gone."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from app_server import served
from gradio_client import Client, handle_file
from PIL import Image
from tiny_compression import compression_studio, tiny_amused_in, tiny_photo

import app
from engines.base import Recipe
from engines.cli import main
from engines.compression import CompressRequest, RestoreRequest
from engines.errors import InputError
from engines.hashing import file_sha256
from engines.recipes import inputs_folder_for, record_inputs


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    studio, undo = compression_studio(tiny_amused_in(base), base / "zss-cache")
    yield studio
    undo()


@pytest.fixture
def photo(tmp_path) -> Path:
    path = tmp_path / "my photo.png"
    Image.fromarray(tiny_photo(72, 52)).save(path)
    return path


def test_file_inputs_are_recorded_with_their_name_and_hash(photo):
    params = {"file": str(photo), "original": None, "lost_fraction": 0.3, "seed": 1}
    assert record_inputs(RestoreRequest, params) == {
        "file": {"name": "my photo.png", "sha256": file_sha256(photo)}
    }
    assert record_inputs(CompressRequest, {"image": "<in-memory image>"}) == {}


def make_recipe(photo: Path) -> Recipe:
    params = {"task": "compress", "image": str(photo), "codebook_size": 16, "coder": "fixed"}
    inputs = record_inputs(CompressRequest, params)
    return Recipe(engine="compression", params=params, inputs=inputs)


def test_a_zip_holds_the_recipe_and_its_input(photo, tmp_path):
    bundle = make_recipe(photo).save_zip(tmp_path / "out" / "compression-recipe.zip")
    with zipfile.ZipFile(bundle) as opened:
        assert sorted(opened.namelist()) == ["inputs/image-my_photo.png", "recipe.json"]
        saved = json.loads(opened.read("recipe.json"))
    assert saved["params"]["image"] == "inputs/image-my_photo.png"
    assert saved["inputs"]["image"]["sha256"] == file_sha256(photo)
    original = photo.read_bytes()
    photo.unlink()  # the upload is gone: the zip still has it
    assert Path(Recipe.load(bundle).params["image"]).read_bytes() == original


def test_a_folder_bundle_and_its_recipe_json_load_alike(photo, tmp_path):
    folder = tmp_path / "bundle"
    make_recipe(photo).save_bundle(folder)
    assert (folder / "inputs" / "image-my_photo.png").read_bytes() == photo.read_bytes()
    by_folder, by_file = Recipe.load(folder), Recipe.load(folder / "recipe.json")
    assert by_folder.params["image"] == by_file.params["image"]
    assert Path(by_folder.params["image"]).is_absolute()


def test_an_input_given_from_elsewhere_is_checked_against_the_hash(photo, tmp_path):
    folder = tmp_path / "bundle"
    make_recipe(photo).save_bundle(folder)
    shutil.rmtree(folder / "inputs")
    with pytest.raises(InputError, match="--input image=PATH"):
        Recipe.load(folder)
    assert Recipe.load(folder, {"image": str(photo)}).params["image"] == str(photo.resolve())
    other = tmp_path / "other.png"
    Image.fromarray(tiny_photo(72, 52, seed=5)).save(other)
    with pytest.raises(InputError, match="not the image input this recipe was made with"):
        Recipe.load(folder, {"image": str(other)})
    with pytest.raises(InputError, match="no input 'voice'; its file inputs: image"):
        Recipe.load(folder, {"voice": str(other)})


def test_a_changed_bundled_input_is_refused(photo, tmp_path):
    folder = tmp_path / "bundle"
    make_recipe(photo).save_bundle(folder)
    (folder / "inputs" / "image-my_photo.png").write_bytes(b"changed")
    with pytest.raises(InputError, match="its contents differ"):
        Recipe.load(folder)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../escape.txt", "holds only recipe.json"),
        ("inputs/../../x", "holds only recipe.json"),
        ("inputs/.hidden", "holds only recipe.json"),
        ("other.json", "holds only recipe.json"),
    ],
)
def test_a_zip_with_anything_else_is_refused(tmp_path, name, message):
    bundle = tmp_path / "r.zip"
    with zipfile.ZipFile(bundle, "w") as opened:
        opened.writestr("recipe.json", json.dumps({"engine": "compression", "params": {}}))
        opened.writestr(name, "x")
    with pytest.raises(InputError, match=message):
        Recipe.load(bundle)


def test_cli_saves_a_folder_that_runs_without_the_original(studio, photo, tmp_path, capsys):
    first = tmp_path / "first"
    result = studio.engine("compression").run(
        CompressRequest(image=str(photo), codebook_size=16, baselines=False)
    )
    result.save(first)
    photo.unlink()
    assert main(["--device", "cpu", "run", str(first), "-o", str(tmp_path / "again")]) == 0
    (zsc,) = (tmp_path / "again").glob("*.zsc")
    assert zsc.read_bytes() == result.zsc
    assert (tmp_path / "again" / "inputs" / "image-my_photo.png").is_file()
    assert str(zsc) in capsys.readouterr().out


def test_a_one_file_command_writes_a_recipe_that_runs_after_its_folder_moves(
    studio, photo, tmp_path, capsys
):
    """`compress -o x.zsc` writes x.recipe.json beside it and the photo in x.inputs/, named
    relative to the recipe: the folder moves, the original photo goes, the recipe still runs."""
    work = tmp_path / "work"
    out = work / "garden.zsc"
    args = ["compress", str(photo), "-o", str(out), "--codebook", "16", "--no-baselines"]
    assert main(["--device", "cpu", *args]) == 0
    recipe = json.loads((work / "garden.recipe.json").read_text())
    assert recipe["params"]["image"] == "garden.inputs/image-my_photo.png"
    assert recipe["inputs"]["image"]["sha256"] == file_sha256(photo)
    assert str(work / "garden.inputs" / "image-my_photo.png") in capsys.readouterr().err

    moved = tmp_path / "elsewhere"
    work.rename(moved)
    photo.unlink()
    again = tmp_path / "again"
    assert (
        main(["--device", "cpu", "run", str(moved / "garden.recipe.json"), "-o", str(again)]) == 0
    )
    (zsc,) = again.glob("*.zsc")
    assert zsc.read_bytes() == (moved / "garden.zsc").read_bytes()


def test_the_inputs_folder_is_named_after_the_recipe_file():
    assert inputs_folder_for("recipe.json") == "inputs"
    assert inputs_folder_for("said.recipe.json") == "said.inputs"
    assert inputs_folder_for("edited-recipe.json") == "edited-inputs"
    assert inputs_folder_for("mine.json") == "mine.inputs"


@pytest.mark.e2e
def test_a_recipe_downloaded_from_the_app_runs_again(studio, photo, tmp_path, monkeypatch):
    """The recipe file the page offers re-runs from the command line after the server has
    deleted its copy of the upload (as Gradio does after an hour): nothing is waited for."""
    demo = app.build_demo(tabs=["compression"], studio=studio)
    with served(demo) as url:
        client = Client(url, verbose=False, download_files=str(tmp_path / "downloads"))
        outputs = client.predict(handle_file(str(photo)), 16, "fixed", api_name="/compress")
        zsc, recipe = outputs[1], outputs[5]  # the .zsc file and the recipe
    assert recipe.endswith("compression-compress-recipe.zip")  # named by engine and task
    with zipfile.ZipFile(recipe) as opened:
        uploaded = json.loads(opened.read("recipe.json"))["inputs"]["image"]
    assert uploaded["sha256"] == file_sha256(photo)
    for cached in Path(demo.GRADIO_CACHE).rglob(uploaded["name"]):
        cached.unlink()  # the server's temp copy of the upload goes
    photo.unlink()
    again = tmp_path / "again"
    assert main(["--device", "cpu", "run", recipe, "-o", str(again)]) == 0
    (made,) = again.glob("*.zsc")
    assert made.read_bytes() == Path(zsc).read_bytes()
