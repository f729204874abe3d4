"""The model registry: models.toml, overrides, offline errors, and real hub-cache lookups."""

from __future__ import annotations

import hashlib
import json

import pytest

from engines.downloads import download_record_path
from engines.errors import InputError, ModelUnavailable
from engines.hashing import tree_sha256
from engines.registry import DEFAULT_MODELS_TOML, Registry, override_variable


def write_toml(tmp_path, text: str):
    path = tmp_path / "models.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_default_registry_lists_components_with_sources_and_licences():
    registry = Registry.load()
    assert registry.source_file == DEFAULT_MODELS_TOML
    specs = [spec for engine in registry.engines() for spec in registry.components(engine)]
    assert specs, "models.toml lists no components"
    for spec in specs:
        assert spec.repo or (spec.url and spec.filename), spec.key
        assert spec.license, f"{spec.key} has no licence"


def test_override_variable_names_are_upper_snake():
    assert override_variable("layout", "sd15") == "ZSS_MODEL_LAYOUT_SD15"
    assert override_variable("gan", "cat-256") == "ZSS_MODEL_GAN_CAT_256"


def test_local_folder_override_resolves_to_that_folder(tmp_path, local_model):
    registry = Registry.load()
    local_model("layout", "sd15", tmp_path)
    resolved = registry.resolve("layout", "sd15")
    assert resolved.path == tmp_path
    assert resolved.revision == "local:sha256:" + tree_sha256(tmp_path)
    assert resolved.recipe_entry() == {"source": "local", "revision": resolved.revision}


def test_missing_local_override_names_the_variable(tmp_path, local_model):
    local_model("layout", "sd15", tmp_path / "nowhere")
    with pytest.raises(ModelUnavailable, match="ZSS_MODEL_LAYOUT_SD15"):
        Registry.load().resolve("layout", "sd15")


def test_repo_override_changes_repo_and_revision(monkeypatch):
    monkeypatch.setenv("ZSS_MODEL_LAYOUT_SD15", "someone/fork@v2")
    spec = Registry.load().spec("layout", "sd15")
    assert (spec.repo, spec.revision) == ("someone/fork", "v2")


def test_offline_missing_hub_model_names_repo_and_fix(tmp_path, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    path = write_toml(tmp_path, '[demo.weights]\nrepo = "org/model"\nlicense = "MIT"\n')
    with pytest.raises(ModelUnavailable) as info:
        Registry.load(path).resolve("demo", "weights")
    message = str(info.value)
    assert "org/model@main" in message
    assert "zsstudio download demo" in message
    assert "ZSS_MODEL_DEMO_WEIGHTS" in message


def test_hub_cache_snapshot_resolves_offline_with_its_commit(tmp_path, monkeypatch):
    """A model already in the Hugging Face cache layout is found offline, with its commit."""
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = tmp_path / "hub" / "models--org--model"
    snapshot = repo_dir / "snapshots" / commit
    (snapshot / "unet").mkdir(parents=True)
    (snapshot / "unet" / "config.json").write_text("{}")
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    toml = '[demo.unet]\nrepo = "org/model"\nsubfolder = "unet"\nlicense = "MIT"\n'
    resolved = Registry.load(write_toml(tmp_path, toml)).resolve("demo", "unet")
    assert resolved.revision == commit
    assert resolved.folder == snapshot / "unet"
    assert resolved.recipe_entry() == {
        "source": "org/model",
        "revision": commit,
        "subfolder": "unet",
    }


def test_url_component_offline_is_unavailable(tmp_path, monkeypatch):
    monkeypatch.setattr("engines.registry.CACHE_DIR", tmp_path)
    toml = '[demo.vocoder]\nurl = "https://example.org/g.pt"\nsha256 = "ab"\nfilename = "g.pt"\n'
    with pytest.raises(ModelUnavailable, match="https://example.org/g.pt"):
        Registry.load(write_toml(tmp_path, toml)).resolve("demo", "vocoder")


def test_url_component_found_in_cache(tmp_path, monkeypatch):
    """A whole download (its record says so) of the file models.toml names counts."""
    monkeypatch.setattr("engines.registry.CACHE_DIR", tmp_path)
    sha = hashlib.sha256(b"weights").hexdigest()
    (tmp_path / "url" / sha).mkdir(parents=True)
    (tmp_path / "url" / sha / "g.pt").write_bytes(b"weights")
    record = {"url": "https://example.org/g.pt", "bytes": 7, "sha256": sha}
    download_record_path(tmp_path / "url" / sha / "g.pt").write_text(json.dumps(record))
    toml = (
        f'[demo.vocoder]\nurl = "https://example.org/g.pt"\nsha256 = "{sha}"\nfilename = "g.pt"\n'
    )
    resolved = Registry.load(write_toml(tmp_path, toml)).resolve("demo", "vocoder")
    assert resolved.path.read_bytes() == b"weights"
    assert resolved.revision == sha


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not = [valid", "not valid TOML"),
        ('[demo.x]\nrepo = "a/b"\nurl = "http://x"\n', "exactly one of"),
        ('[demo.x]\nrepo = "a/b"\ncolour = "red"\n', "unknown keys"),
        ('demo = "flat"\n', "must be a table"),
    ],
)
def test_bad_models_file_is_an_input_error(tmp_path, text, message):
    with pytest.raises(InputError, match=message):
        Registry.load(write_toml(tmp_path, text))


def test_missing_models_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        Registry.load(tmp_path / "nope.toml")


def test_unknown_component_is_an_input_error():
    with pytest.raises(InputError, match="No model `layout.nope`"):
        Registry.load().spec("layout", "nope")
