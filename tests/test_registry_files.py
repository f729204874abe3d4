"""Every Hub component of models.toml held against a recorded file list of its repo
(tests/fixtures/hub_files/, each saying where it came from): its patterns fetch every file its
loader reads, match something each, and fetch no large file that nothing loads. The Hub cannot
be reached from the tests, so the lists are recorded; a repo that changes needs its list
recorded again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub.utils import filter_repo_objects

from engines.registry import Registry

FIXTURES = Path(__file__).parent / "fixtures" / "hub_files"
LARGE = 10 * 2**20
"""A fetched file this large (or of unrecorded size) that no loader reads is a wasted download."""

WEIGHT_SUFFIXES = (".bin", ".safetensors", ".pt", ".ckpt", ".h5", ".msgpack")

# Weight files in the order from_pretrained looks for them: the first one present is read.
TRANSFORMERS = ("model.safetensors", "pytorch_model.bin")
DIFFUSERS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
CLIP_TOKENIZER = ("vocab.json", "merges.txt", "tokenizer_config.json")


def _in(folder: str, *names) -> list:
    """Requirements under `folder`: a name, or a tuple of alternatives (the first present is
    the one read)."""
    prefix = f"{folder}/" if folder else ""
    return [
        tuple(prefix + n for n in name) if isinstance(name, tuple) else prefix + name
        for name in names
    ]


STABLE_DIFFUSION = [  # engines/layout/loading.py, engines/video/loading.py, engines/nerf/loading.py
    "model_index.json",
    "scheduler/scheduler_config.json",
    *_in("tokenizer", *CLIP_TOKENIZER),
    *_in("text_encoder", "config.json", TRANSFORMERS),
    *_in("unet", "config.json", DIFFUSERS),
    *_in("vae", "config.json", DIFFUSERS),
]
GROUNDING_DINO = [  # engines/detection.py: AutoProcessor + the detector
    "config.json",
    "preprocessor_config.json",
    "tokenizer_config.json",
    "vocab.txt",
    TRANSFORMERS,
]
OPEN_CLIP = [
    "open_clip_config.json",
    ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"),
]
AUDIO_MODEL = ["config.json", "preprocessor_config.json", TRANSFORMERS]  # WavLM: model + extractor

READS: dict[str, list] = {
    "layout.sd15": STABLE_DIFFUSION,
    "layout.sd21base": STABLE_DIFFUSION,
    "layout.detector": GROUNDING_DINO,
    "compression.amused": [  # engines/compression/loading.py
        "model_index.json",
        *_in("vqvae", "config.json", DIFFUSERS),
        *_in("transformer", "config.json", DIFFUSERS),
        *_in("text_encoder", "config.json", TRANSFORMERS),
        *_in("tokenizer", *CLIP_TOKENIZER),
    ],
    "speech.wavlm": ["config.json", TRANSFORMERS],  # the model only: kNN-VC reads raw audio
    "speech.speaker": AUDIO_MODEL,
    "speech.asr": [  # WhisperForConditionalGeneration + WhisperProcessor
        "config.json",
        "generation_config.json",
        "preprocessor_config.json",
        "tokenizer_config.json",
        "vocab.json",
        "merges.txt",
        TRANSFORMERS,
    ],
    "gan.clip": OPEN_CLIP,
    "gan.clip_b16": OPEN_CLIP,
    "nerf.sd15": STABLE_DIFFUSION,
    "nerf.clip": OPEN_CLIP,
    "nerf.clip_l14": OPEN_CLIP,
    "video.sd15": STABLE_DIFFUSION,
    "video.motion_adapter": ["config.json", DIFFUSERS],
    "video.ip_adapter": [  # engines/video/loading.py
        *_in("models/image_encoder", "config.json", TRANSFORMERS),
        "models/ip-adapter_sd15.safetensors",
        "models/ip-adapter-plus_sd15.safetensors",
    ],
    "video.clip": ["config.json", "preprocessor_config.json", *CLIP_TOKENIZER, TRANSFORMERS],
    "video.dino": ["config.json", "preprocessor_config.json", TRANSFORMERS],
    "video.detector": GROUNDING_DINO,
    "video.segmenter": ["config.json", "preprocessor_config.json", *CLIP_TOKENIZER, TRANSFORMERS],
}
"""What each loader reads from its component's folder. The GAN generators are single files."""


def recorded(repo: str) -> dict:
    path = FIXTURES / (repo.replace("/", "__") + ".json")
    assert path.is_file(), f"no recorded file list of {repo}: add {path.name} (see its siblings)"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["repo"] == repo and data["source"], path.name
    return data


def hub_components() -> list:
    registry = Registry.load()
    return [
        spec
        for engine in registry.engines()
        for spec in registry.components(engine)
        if spec.repo and not spec.local_path
    ]


def fetched(spec, files: dict) -> list[str]:
    """The files `zsstudio download` takes from the repo, as registry._resolve_hub asks."""
    if spec.filename:
        name = f"{spec.subfolder}/{spec.filename}" if spec.subfolder else spec.filename
        return [name] if name in files else []
    patterns = list(spec.allow_patterns) if spec.allow_patterns else None
    if spec.subfolder and not patterns:
        patterns = [f"{spec.subfolder}/*"]
    return list(filter_repo_objects(files, allow_patterns=patterns))


def read_files(requirements: list, got: set[str]) -> tuple[set[str], list[str]]:
    """(the files the loader reads out of `got`, the requirements nothing in `got` meets)."""
    read, unmet = set(), []
    for requirement in requirements:
        options = requirement if isinstance(requirement, tuple) else (requirement,)
        present = [name for name in options if name in got]
        if present:
            read.add(present[0])
        else:
            unmet.append(" or ".join(options))
    return read, unmet


def problems(spec) -> list[str]:
    """What is wrong with a component's patterns against its repo's recorded files."""
    files = recorded(spec.repo)["files"]
    got = set(fetched(spec, files))
    if spec.filename:
        return [] if got else [f"{spec.repo} has no {spec.filename}"]
    found = [
        f"allow_patterns entry {pattern!r} matches no file of {spec.repo}"
        for pattern in spec.allow_patterns or ()
        if not list(filter_repo_objects(files, allow_patterns=[pattern]))
    ]
    read, unmet = read_files(READS[spec.key], got)
    found += [f"the loader reads {name}, which the patterns do not fetch" for name in unmet]
    wasted = sorted(
        name
        for name in got - read
        if (files[name] is None and name.endswith(WEIGHT_SUFFIXES)) or (files[name] or 0) > LARGE
    )
    found += [f"the patterns fetch {name}, which nothing loads" for name in wasted]
    return found


@pytest.mark.parametrize("spec", hub_components(), ids=lambda spec: spec.key)
def test_the_patterns_fetch_what_the_loader_reads_and_nothing_large_besides(spec):
    data = recorded(spec.repo)
    if data["files"] is None:
        pytest.skip(f"{spec.repo}: {data['source']}")
    assert problems(spec) == [], spec.key


def test_the_check_finds_the_faults_it_is_for():
    """The patterns video.clip and speech.asr had before: CLIP's asked for a model.safetensors
    its main does not hold (so no weights came), Whisper's whole repo brought three unread
    290 MB copies of its weights."""
    from dataclasses import replace

    registry = Registry.load()
    clip = registry.spec("video", "clip")
    old = tuple(p if p != "pytorch_model.bin" else "model.safetensors" for p in clip.allow_patterns)
    assert problems(replace(clip, allow_patterns=old)) == [
        "allow_patterns entry 'model.safetensors' matches no file of openai/clip-vit-base-patch32",
        "the loader reads model.safetensors or pytorch_model.bin, which the patterns do not fetch",
    ]
    whisper = replace(registry.spec("speech", "asr"), allow_patterns=None)
    assert problems(whisper) == [
        f"the patterns fetch {name}, which nothing loads"
        for name in ("flax_model.msgpack", "pytorch_model.bin", "tf_model.h5")
    ]


def test_every_loader_requirement_names_a_component():
    keys = {
        spec.key
        for spec in hub_components()
        if not spec.filename and recorded(spec.repo)["files"] is not None
    }
    assert set(READS) == keys


def test_the_torch_floor_lets_transformers_read_the_bin_files_fetched():
    """transformers 5 torch.loads a .bin only from torch 2.6; DINO, CLIPSeg, CLIP and WavLM
    ship nothing else."""
    import re

    from packaging.version import Version

    bins = []
    for spec in hub_components():
        files = recorded(spec.repo)["files"] or {}
        bins += [f"{spec.key}:{n}" for n in fetched(spec, files) if n.endswith("model.bin")]
    assert bins  # the check below matters
    root = Path(__file__).parent.parent
    for text in (
        (root / "pyproject.toml").read_text(encoding="utf-8"),
        (root / "requirements.txt").read_text(encoding="utf-8"),
    ):
        floor = re.search(r"^\s*\"?torch>=([\d.]+)", text, re.MULTILINE)
        assert floor and Version(floor.group(1)) >= Version("2.6"), bins


# -- the tiny models are saved in the files the real repos hold -------------------------------


def _built(name: str, tmp_path, tiny_video_dirs):
    """The tiny stand-in's folder for a component, built by the test harness's builder."""
    from tiny_gan import save_tiny_open_clip
    from tiny_speech import save_tiny_speaker, save_tiny_wavlm, save_tiny_whisper

    builders = {
        "speech.wavlm": save_tiny_wavlm,
        "speech.speaker": save_tiny_speaker,
        "speech.asr": save_tiny_whisper,
        "gan.clip": save_tiny_open_clip,
        "nerf.clip_l14": save_tiny_open_clip,  # tests/test_nerf_metric_clip.py loads it
    }
    engine, component = name.split(".")
    if engine == "video" or name == "layout.detector":
        return tiny_video_dirs[component]
    return builders[name](tmp_path / component)


FORMATS = [
    "video.sd15",
    "video.motion_adapter",
    "video.ip_adapter",
    "video.clip",
    "video.dino",
    "video.detector",
    "video.segmenter",
    "layout.detector",
    "speech.wavlm",
    "speech.speaker",
    "speech.asr",
    "gan.clip",
    "nerf.clip_l14",
]
"""The components whose tiny stand-ins are checked; aMUSEd's tokenizer/ and Pocket TTS's
file names are not recorded (see their fixtures)."""


@pytest.mark.parametrize("key", FORMATS)
def test_a_tiny_stand_in_has_only_files_the_real_download_has(key, tmp_path, tiny_video_dirs):
    """Each tiny folder the loaders are tested on holds only files the real download holds:
    a .bin where the repo has only .bin, the 2022 tokenizer and feature-extractor files where
    the repo has those (no processor_config.json, no tokenizer.json the repo lacks)."""
    spec = next(spec for spec in hub_components() if spec.key == key)
    real = set(fetched(spec, recorded(spec.repo)["files"]))
    folder = Path(_built(key, tmp_path, tiny_video_dirs))
    tiny = {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}
    assert tiny - real == set(), f"{key}: the tiny folder has files the real download lacks"
    read, unmet = read_files(READS[key], tiny)
    assert not unmet, f"{key}: the tiny folder lacks {unmet}"
    assert read <= real
