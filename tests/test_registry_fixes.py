"""Registry entries that must work with the real checkpoints on day one: a renamed Hub repo
kept working through [aliases], aMUSEd fetched without its fp16 copies, and the Pocket TTS
codec found where the checkpoint itself says it is."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engines.device import DeviceSpec
from engines.errors import InputError, ModelUnavailable
from engines.parts import LoadContext
from engines.pins import pin_recorded
from engines.registry import Registry, local_revision

OLD_STYLEGAN = "aaronb/StyleGAN2"
NEW_STYLEGAN = "ZeqiangLai/StyleGAN2"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
GAN_GENERATORS = ("cat256", "church256", "horse256", "ffhq1024")


def cache_snapshot(hub: Path, repo: str, files: dict[str, bytes | Path]) -> Path:
    """A Hub repo in the Hugging Face cache layout (refs/main -> one snapshot)."""
    repo_dir = hub / ("models--" + repo.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / COMMIT
    for name, content in files.items():
        path = snapshot / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copy(content, path)
        else:
            path.write_bytes(content)
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / "main").write_text(COMMIT)
    return snapshot


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "hub"
    folder.mkdir()
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(folder))
    return folder


# -- StyleGAN2 moved from aaronb/ to ZeqiangLai/ ------------------------------------------


def test_gan_generators_use_the_current_repo_id():
    registry = Registry.load()
    for name in GAN_GENERATORS:
        assert registry.spec("gan", name).repo == NEW_STYLEGAN


def test_the_alias_table_is_not_an_engine():
    registry = Registry.load()
    assert "aliases" not in registry.engines()
    assert registry.aliases[OLD_STYLEGAN] == NEW_STYLEGAN


def test_an_override_naming_the_old_id_gets_the_new_one(monkeypatch):
    monkeypatch.setenv("ZSS_MODEL_GAN_CAT256", f"{OLD_STYLEGAN}@main")
    spec = Registry.load().spec("gan", "cat256")
    assert (spec.repo, spec.revision) == (NEW_STYLEGAN, "main")
    assert OLD_STYLEGAN in spec.former_repos


def test_a_copy_cached_under_the_old_id_is_still_found_offline(hub):
    snapshot = cache_snapshot(hub, OLD_STYLEGAN, {"stylegan2-cat-config-f.pt": b"weights"})
    resolved = Registry.load().resolve("gan", "cat256", download=False)
    assert resolved.path == snapshot / "stylegan2-cat-config-f.pt"
    assert resolved.revision == COMMIT


def test_a_recipe_recording_the_old_id_resolves_to_the_new_repo(hub):
    snapshot = cache_snapshot(hub, NEW_STYLEGAN, {"stylegan2-cat-config-f.pt": b"weights"})
    entry = {"source": OLD_STYLEGAN, "revision": COMMIT, "filename": "stylegan2-cat-config-f.pt"}
    registry = Registry.load()
    assert pin_recorded(registry, "gan", {"cat256": entry})[0].startswith("models: as the recipe")
    resolved = registry.resolve("gan", "cat256", download=False)
    assert resolved.spec.repo == NEW_STYLEGAN
    assert resolved.path == snapshot / "stylegan2-cat-config-f.pt"
    assert resolved.recipe_entry()["source"] == NEW_STYLEGAN


def test_a_bad_alias_table_is_an_input_error(tmp_path):
    path = tmp_path / "models.toml"
    path.write_text('[aliases]\n"a/b" = 3\n[demo.x]\nrepo = "a/b"\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"\[aliases\] must map old repo ids"):
        Registry.load(path)


# -- aMUSEd without the fp16 copies -------------------------------------------------------

AMUSED_512_FILES = [  # the files of amused/amused-512 that the patterns decide about
    "model_index.json",
    "scheduler/scheduler_config.json",
    "text_encoder/config.json",
    "text_encoder/model.safetensors",
    "text_encoder/model.fp16.safetensors",
    "tokenizer/merges.txt",
    "tokenizer/special_tokens_map.json",
    "tokenizer/tokenizer_config.json",
    "tokenizer/vocab.json",
    "transformer/config.json",
    "transformer/diffusion_pytorch_model.safetensors",
    "transformer/diffusion_pytorch_model.fp16.safetensors",
    "vqvae/config.json",
    "vqvae/diffusion_pytorch_model.safetensors",
    "vqvae/diffusion_pytorch_model.fp16.safetensors",
]


def test_amused_downloads_its_fp32_weights_and_no_fp16_copies():
    from huggingface_hub.utils import filter_repo_objects

    spec = Registry.load().spec("compression", "amused")
    fetched = set(filter_repo_objects(AMUSED_512_FILES, allow_patterns=list(spec.allow_patterns)))
    assert not [name for name in fetched if ".fp16." in name]
    for part in ("vqvae", "transformer"):
        assert f"{part}/config.json" in fetched
        assert f"{part}/diffusion_pytorch_model.safetensors" in fetched
    assert {"text_encoder/model.safetensors", "tokenizer/vocab.json"} <= fetched


# -- the Pocket TTS codec where the checkpoint says -----------------------------------------

REGISTRY_CODEC = "eustlb/pocket-tts-audio-tokenizer"


@pytest.fixture(scope="module")
def pocket(tmp_path_factory) -> dict[str, Path]:
    from tiny_speech import save_tiny_pocket_tts

    root = tmp_path_factory.mktemp("pocket")
    save_tiny_pocket_tts(root / "tts", root / "codec")
    return {"tts": root / "tts", "codec": root / "codec"}


def checkpoint_naming(pocket: dict[str, Path], folder: Path, codec: str) -> Path:
    """A copy of the tiny Pocket TTS whose processor_config.json names `codec`."""
    shutil.copytree(pocket["tts"], folder)
    config_path = folder / "processor_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["audio_tokenizer"]["audio_tokenizer_name_or_path"] = codec
    config_path.write_text(json.dumps(config), encoding="utf-8")
    return folder


def load_tts(monkeypatch):
    from engines.speech.loading import load_tts as load

    monkeypatch.delenv("ZSS_MODEL_SPEECH_CODEC", raising=False)
    context = LoadContext(Registry.load(), DeviceSpec("cpu", "float32"), "speech")
    return load(context), context.sources


def test_the_codec_the_checkpoint_names_is_used(pocket, tmp_path, hub, local_model, monkeypatch):
    tts = checkpoint_naming(pocket, tmp_path / "tts", str(pocket["codec"]))
    local_model("speech", "tts", tts)
    cloner, sources = load_tts(monkeypatch)
    assert cloner.sample_rate > 0
    assert sources["codec"] == {"source": "local", "revision": local_revision(pocket["codec"])}


def test_the_registry_codec_is_the_fallback(pocket, tmp_path, hub, local_model, monkeypatch):
    cache_snapshot(
        hub, REGISTRY_CODEC, {p.name: p for p in pocket["codec"].iterdir() if p.is_file()}
    )
    tts = checkpoint_naming(pocket, tmp_path / "tts", "someone/missing-codec")
    local_model("speech", "tts", tts)
    cloner, sources = load_tts(monkeypatch)
    assert cloner.sample_rate > 0
    assert sources["codec"] == {"source": REGISTRY_CODEC, "revision": COMMIT}


def test_when_no_codec_loads_the_error_names_both(pocket, tmp_path, hub, local_model, monkeypatch):
    tts = checkpoint_naming(pocket, tmp_path / "tts", "someone/missing-codec")
    local_model("speech", "tts", tts)
    with pytest.raises(ModelUnavailable) as info:
        load_tts(monkeypatch)
    message = str(info.value)
    assert "someone/missing-codec" in message
    assert REGISTRY_CODEC in message
    assert "ZSS_MODEL_SPEECH_CODEC" in message
