"""Recipes pin their models: `zsstudio run` loads the revisions a recipe recorded (two
revisions of a tiny CLIP in the Hub cache layout), `--latest-models` opts out, what cannot be
pinned is named in one line, and a recipe's `models` table names no paths."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from tiny_gan import save_tiny_generator, save_tiny_open_clip

from engines.base import Recipe
from engines.cli import main
from engines.downloads import download_record_path
from engines.errors import InputError, ModelUnavailable
from engines.pins import check_recorded, pin_recorded
from engines.registry import Registry, local_revision

pytestmark = pytest.mark.usefixtures("one_thread")

CLIP_REPO = "timm/vit_base_patch32_clip_224.openai"
REV1 = "1" * 40
REV2 = "2" * 40


def put_revision(hub: Path, repo: str, revision: str, source: Path, main: bool) -> Path:
    """One revision of a repo in the Hugging Face cache layout; `main`: refs/main names it."""
    repo_dir = hub / ("models--" + repo.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / revision
    shutil.copytree(source, snapshot)
    if main:
        (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
        (repo_dir / "refs" / "main").write_text(revision)
    return snapshot


def move_main(hub: Path, repo: str, revision: str) -> None:
    (hub / ("models--" + repo.replace("/", "--")) / "refs" / "main").write_text(revision)


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "hub"
    folder.mkdir()
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(folder))
    for name in ("ZSS_MODEL_GAN_CLIP", "ZSS_MODEL_GAN_CAT256"):
        monkeypatch.delenv(name, raising=False)
    return folder


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> tuple[Path, Path]:
    """Two revisions of the same tiny CLIP: other weights, same layout."""
    folder = tmp_path_factory.mktemp("clips")
    return save_tiny_open_clip(folder / "one", seed=0), save_tiny_open_clip(folder / "two", seed=1)


def test_a_pinned_component_resolves_at_the_recorded_revision(hub, clips):
    put_revision(hub, CLIP_REPO, REV1, clips[0], main=False)
    put_revision(hub, CLIP_REPO, REV2, clips[1], main=True)
    registry = Registry.load()
    assert registry.resolve("gan", "clip").revision == REV2  # what main is now
    lines = pin_recorded(registry, "gan", {"clip": {"source": CLIP_REPO, "revision": REV1}})
    assert lines == [
        f"models: as the recipe recorded them: gan.clip at {REV1[:12]} "
        "(--latest-models runs the ones models.toml names now)"
    ]
    resolved = registry.resolve("gan", "clip")
    assert resolved.revision == REV1 and resolved.path.name == REV1
    assert Registry.load().resolve("gan", "clip").revision == REV2  # only that registry


def test_a_pinned_revision_not_here_is_named_with_the_way_out(hub, clips):
    put_revision(hub, CLIP_REPO, REV2, clips[1], main=True)
    registry = Registry.load()
    pin_recorded(registry, "gan", {"clip": {"source": CLIP_REPO, "revision": REV1}})
    with pytest.raises(ModelUnavailable) as raised:
        registry.resolve("gan", "clip")
    message = str(raised.value)
    assert f"{CLIP_REPO}@{REV1}" in message and "--latest-models" in message


def test_a_local_copy_is_recorded_by_its_contents_not_its_path(tmp_path, clips):
    copy = shutil.copytree(clips[0], tmp_path / "elsewhere" / "clip")
    (copy / ".cache").mkdir()  # what a download tool leaves beside the files does not count
    (copy / ".cache" / "lock").write_text("x")
    assert local_revision(copy) == local_revision(clips[0])
    assert local_revision(copy) != local_revision(clips[1])
    assert str(tmp_path) not in local_revision(copy)


def test_a_local_copy_is_checked_against_the_recorded_one(hub, clips, local_model):
    recorded = {"clip": {"source": "local", "revision": local_revision(clips[0])}}
    local_model("gan", "clip", clips[0])
    assert pin_recorded(Registry.load(), "gan", recorded) == []  # the same contents: silent
    local_model("gan", "clip", clips[1])
    (line,) = pin_recorded(Registry.load(), "gan", recorded)
    assert line.startswith("gan.clip: the local copy ZSS_MODEL_GAN_CLIP names is not the one")


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({"source": "local", "revision": "local:sha256:" + "a" * 64}, "none is set here"),
        ({"source": "someone/else", "revision": REV1}, "models.toml now names timm/"),
        ({"source": CLIP_REPO, "revision": "main"}, "a name rather than a commit"),
    ],
)
def test_what_cannot_be_pinned_is_named_in_one_line(hub, entry, says):
    registry = Registry.load()
    (line,) = pin_recorded(registry, "gan", {"clip": entry})
    assert line.startswith("gan.clip: ") and says in line and "\n" not in line
    assert registry.pins == {}


def test_an_override_on_this_machine_wins_and_is_named(hub, local_model, clips):
    local_model("gan", "clip", clips[1])
    registry = Registry.load()
    (line,) = pin_recorded(registry, "gan", {"clip": {"source": CLIP_REPO, "revision": REV1}})
    assert "ZSS_MODEL_GAN_CLIP overrides what the recipe used" in line
    assert registry.resolve("gan", "clip").path == clips[1]


def test_a_url_component_is_checked_by_its_checksum(tmp_path):
    sha = "ab" * 32
    toml = tmp_path / "models.toml"
    toml.write_text(f'[demo.g]\nurl = "https://example.org/g.pt"\nsha256 = "{sha}"\n', "utf-8")
    same = {"g": {"source": "https://example.org/g.pt", "revision": sha}}
    assert "demo.g (sha256 abababababab)" in pin_recorded(Registry.load(toml), "demo", same)[0]
    other = {"g": {"source": "https://example.org/g.pt", "revision": "cd" * 32}}
    (line,) = pin_recorded(Registry.load(toml), "demo", other)
    assert "models.toml now names abababababab" in line


def test_a_url_file_without_a_published_checksum_is_checked_by_its_download(tmp_path, monkeypatch):
    monkeypatch.setattr("engines.registry.CACHE_DIR", tmp_path / "cache")
    toml = tmp_path / "models.toml"
    toml.write_text('[demo.g]\nurl = "https://example.org/g.pt"\n', "utf-8")
    recorded = {"g": {"source": "https://example.org/g.pt", "revision": "ab" * 32}}
    (line,) = pin_recorded(Registry.load(toml), "demo", recorded)
    assert "not downloaded yet" in line
    target = Registry.load(toml).url_target(Registry.load(toml).spec("demo", "g"))
    target.parent.mkdir(parents=True)
    target.write_bytes(b"weights")
    sha = hashlib.sha256(b"weights").hexdigest()
    record = {"url": "https://example.org/g.pt", "bytes": 7, "sha256": sha}
    download_record_path(target).write_text(json.dumps(record))
    assert Registry.load(toml).resolve("demo", "g").revision == sha
    (line,) = pin_recorded(Registry.load(toml), "demo", recorded)
    assert f"the file here is {sha[:12]}" in line
    same = {"g": {"source": "https://example.org/g.pt", "revision": sha}}
    assert f"demo.g (sha256 {sha[:12]})" in pin_recorded(Registry.load(toml), "demo", same)[0]


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ({"clip": {"source": "/home/me/clip", "revision": "x"}}, "not by a path"),
        ({"clip": {"source": "../../clip", "revision": "x"}}, "not by a path"),
        ({"clip": {"source": "~/clip", "revision": "x"}}, "set ZSS_MODEL_GAN_CLIP"),
        ({"clip": {"source": "local", "revision": "local:/home/me/clip"}}, "not by a path"),
        ({"teleport": {"source": CLIP_REPO, "revision": REV1}}, "does not have; its models"),
        ({"clip": {"source": CLIP_REPO}}, "needs a `source` and a `revision`"),
        ({"clip": "timm/x"}, "needs a `source` and a `revision`"),
        (["clip"], "must be a JSON object"),
    ],
)
def test_a_recipe_models_table_names_no_paths_and_no_unknown_models(models, message):
    with pytest.raises(InputError, match=message):
        check_recorded(Registry.load(), "gan", models)


def diversity(folder: Path) -> float:
    """The samples' CLIP diversity: the same images measured by another CLIP differ."""
    return json.loads((folder / "metrics.json").read_text())["diversity_clip"]


def test_zsstudio_run_loads_the_recorded_revision(hub, clips, tmp_path, capsys):
    """A recipe made while main was revision 1 runs on revision 1 after main moved on (the
    same CLIP metrics), and on revision 2 with --latest-models (other metrics)."""
    put_revision(hub, CLIP_REPO, REV1, clips[0], main=True)
    put_revision(hub, CLIP_REPO, REV2, clips[1], main=False)
    generator = save_tiny_generator(tmp_path / "adapted.pt", size=32)
    made = tmp_path / "made"
    args = ["--device", "cpu", "gan-sample", str(generator), "-n", "3", "-o", str(made)]
    assert main(args) == 0
    recipe = Recipe.load(made)
    assert recipe.models["clip"] == {"source": CLIP_REPO, "revision": REV1}
    first = diversity(made)
    move_main(hub, CLIP_REPO, REV2)
    capsys.readouterr()

    assert main(["--device", "cpu", "run", str(made), "-o", str(tmp_path / "again")]) == 0
    assert f"gan.clip at {REV1[:12]}" in capsys.readouterr().err
    assert Recipe.load(tmp_path / "again").models["clip"]["revision"] == REV1
    assert diversity(tmp_path / "again") == first

    latest = ["--device", "cpu", "run", str(made), "--latest-models", "-o", str(tmp_path / "new")]
    assert main(latest) == 0
    assert "--latest-models" in capsys.readouterr().err
    assert Recipe.load(tmp_path / "new").models["clip"]["revision"] == REV2
    assert diversity(tmp_path / "new") != first


def test_zsstudio_run_refuses_a_recipe_naming_a_local_path(tmp_path, capsys):
    recipe = Recipe(
        engine="gan",
        params={"task": "sample"},
        models={"clip": {"source": "/etc/clip", "revision": "x"}},
    )
    assert main(["--device", "cpu", "run", str(recipe.save(tmp_path / "r.json"))]) == 2
    assert "names models by Hub id or URL, not by a path" in capsys.readouterr().err
