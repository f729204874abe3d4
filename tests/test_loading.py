"""The one from_pretrained wrapper: a folder that does not load, or that leaves weights
randomly initialised, is refused with ModelUnavailable naming the component; and the lazy
part holder loads each part once and records exactly the models it came from."""

from __future__ import annotations

import pytest
from safetensors.torch import load_file, save_file
from tiny_models import tiny_clip_text_model, tiny_sd_vae

from engines.device import choose_device
from engines.errors import ModelUnavailable
from engines.loading import pretrained, pretrained_files
from engines.parts import LoadContext
from engines.registry import Registry


@pytest.fixture
def resolve(tmp_path, local_model):
    registry = Registry.load()

    def resolved(folder):
        local_model("speech", "speaker", folder)
        return registry.resolve("speech", "speaker")

    return resolved


def drop_one_tensor(folder, filename):
    weights = load_file(folder / filename)
    dropped = sorted(weights)[0]
    del weights[dropped]
    save_file(weights, folder / filename)
    return dropped


def test_a_complete_transformers_checkpoint_loads(tmp_path, resolve):
    from transformers import CLIPTextModel

    tiny_clip_text_model().save_pretrained(tmp_path / "clip")
    model = pretrained(resolve(tmp_path / "clip"), CLIPTextModel)
    assert isinstance(model, CLIPTextModel)


def test_a_transformers_checkpoint_missing_a_tensor_is_refused(tmp_path, resolve):
    from transformers import CLIPTextModel

    tiny_clip_text_model().save_pretrained(tmp_path / "clip")
    dropped = drop_one_tensor(tmp_path / "clip", "model.safetensors")
    with pytest.raises(ModelUnavailable, match="ZSS_MODEL_SPEECH_SPEAKER") as err:
        pretrained(resolve(tmp_path / "clip"), CLIPTextModel)
    assert "missing" in str(err.value) and dropped in str(err.value)


def test_a_diffusers_checkpoint_missing_a_tensor_is_refused(tmp_path, resolve):
    from diffusers import AutoencoderKL

    tiny_sd_vae().save_pretrained(tmp_path / "vae")
    assert isinstance(pretrained(resolve(tmp_path / "vae"), AutoencoderKL), AutoencoderKL)
    drop_one_tensor(tmp_path / "vae", "diffusion_pytorch_model.safetensors")
    with pytest.raises(ModelUnavailable, match="speech.speaker"):
        pretrained(resolve(tmp_path / "vae"), AutoencoderKL)


def test_a_folder_without_weights_or_config_is_refused(tmp_path, resolve):
    from transformers import CLIPTextModel, CLIPTokenizer

    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelUnavailable, match="not available"):
        pretrained(resolve(tmp_path / "empty"), CLIPTextModel)
    with pytest.raises(ModelUnavailable, match="no tokenizer/ folder"):
        pretrained_files(resolve(tmp_path / "empty"), CLIPTokenizer, subfolder="tokenizer")
    with pytest.raises(ModelUnavailable, match="no text_encoder/ folder"):
        pretrained(resolve(tmp_path / "empty"), CLIPTextModel, subfolder="text_encoder")


def test_lazy_parts_load_once_and_record_their_own_sources(tmp_path, local_model):
    for name in ("wavlm", "vocoder", "speaker"):
        (tmp_path / name).mkdir()
        local_model("speech", name, tmp_path / name)
    context = LoadContext(Registry.load(), choose_device("cpu"), "speech")
    calls = []

    def group(ctx):
        calls.append("group")
        return (ctx.resolve("wavlm"), ctx.resolve("vocoder"))

    parts = context.lazy({"knn_vc": group, "speaker": lambda ctx: ctx.resolve("speaker")})
    assert parts.components == {}
    first = parts.get("knn_vc")
    assert parts.get("knn_vc") is first and calls == ["group"]
    parts.get("speaker")
    assert set(parts.sources("knn_vc")) == {"wavlm", "vocoder"}
    assert set(parts.sources("speaker")) == {"speaker"}
    parts.release("knn_vc")
    assert not parts.is_loaded("knn_vc") and parts.sources("knn_vc") == {}
    with pytest.raises(KeyError):
        parts.get("nothing")


def test_a_stable_diffusion_folder_missing_a_unet_weight_is_refused(
    tiny_sd15_dir, tmp_path, local_model
):
    import shutil

    from engines.layout.loading import load_sd_pipeline

    folder = tmp_path / "sd15"
    shutil.copytree(tiny_sd15_dir, folder)
    local_model("layout", "sd15", folder)
    resolved = Registry.load().resolve("layout", "sd15")
    assert load_sd_pipeline(resolved, choose_device("cpu")).unet is not None
    drop_one_tensor(folder / "unet", "diffusion_pytorch_model.safetensors")
    with pytest.raises(ModelUnavailable, match="unet/ does not load|missing"):
        load_sd_pipeline(resolved, choose_device("cpu"))


@pytest.mark.parametrize("damage", ["no weights file", "one tensor missing"])
def test_an_open_clip_folder_without_all_its_weights_is_refused(tmp_path, local_model, damage):
    """open_clip alone only warns and runs a randomly initialised CLIP."""
    from tiny_gan import save_tiny_open_clip

    from engines.gan.loading import clip_loader

    folder = save_tiny_open_clip(tmp_path / "clip")
    local_model("gan", "clip", folder)
    context = LoadContext(Registry.load(), choose_device("cpu"), "gan")
    assert clip_loader("clip")(context).model is not None
    if damage == "no weights file":
        (folder / "open_clip_model.safetensors").unlink()
    else:
        drop_one_tensor(folder, "open_clip_model.safetensors")
    with pytest.raises(ModelUnavailable, match="gan.clip"):
        clip_loader("clip")(context)


def test_a_motion_adapter_missing_keys_is_refused_naming_them_and_the_diffusers_versions(
    tmp_path, local_model, tiny_sd15_dir
):
    """Strict where diffusers only warns, but actionable: an adapter written by an older
    diffusers whose keys were renamed reads as missing keys; the refusal lists them and says
    which diffusers wrote the checkpoint and which reads it."""
    import importlib.metadata
    import json

    from tiny_video import save_tiny_motion_adapter

    from engines.video.loading import load_pipeline

    folder = save_tiny_motion_adapter(tmp_path / "motion")
    config = json.loads((folder / "config.json").read_text())
    config["_diffusers_version"] = "0.24.0.dev0"  # an older diffusers
    (folder / "config.json").write_text(json.dumps(config))
    weights = load_file(folder / "diffusion_pytorch_model.safetensors")
    dropped = sorted(k for k in weights if ".proj_in." in k)[:2]
    save_file(
        {k: v for k, v in weights.items() if k not in dropped},
        folder / "diffusion_pytorch_model.safetensors",
    )
    local_model("video", "sd15", tiny_sd15_dir)
    local_model("video", "motion_adapter", folder)
    context = LoadContext(Registry.load(), choose_device("cpu"), "video")
    with pytest.raises(ModelUnavailable, match="video.motion_adapter") as err:
        load_pipeline(context)
    message = str(err.value)
    assert all(key in message for key in dropped) and "2 weights missing" in message
    assert "written by diffusers 0.24.0.dev0" in message
    assert f"read by diffusers {importlib.metadata.version('diffusers')}" in message
