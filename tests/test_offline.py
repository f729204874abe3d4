"""Setting up offline: one message names every missing model of an engine with the command and
variables that fix it; no waiting when offline or when the Hub cannot be reached; About and
`zsstudio models` say what is on this machine."""

from __future__ import annotations

import json
import socket
import time

import pytest

from engines import downloads
from engines import registry as registry_module
from engines.cli import main
from engines.downloads import download_failure
from engines.errors import ModelUnavailable
from engines.registry import Registry
from engines.studio import Studio


@pytest.fixture
def empty_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(registry_module, "CACHE_DIR", tmp_path / "zss")
    monkeypatch.setattr(downloads, "_probes", {})
    return tmp_path


def test_one_message_lists_every_missing_model_of_the_engine(empty_hub_cache):
    from engines.layout import LayoutRequest

    engine = Studio(device="cpu").engine("layout")
    started = time.perf_counter()
    with pytest.raises(ModelUnavailable) as raised:
        engine.run(
            LayoutRequest(prompt="a cat", boxes=[("cat", 0, 0, 32, 32)], width=64, height=64)
        )
    assert time.perf_counter() - started < 5  # offline: no retries, no waiting
    message = str(raised.value)
    assert message.startswith(
        "Model stable-diffusion-v1-5/stable-diffusion-v1-5@main for layout.sd15"
    )
    assert "not downloaded; offline (HF_HUB_OFFLINE)" in message
    for part in (
        "layout.detector (only for the layout score), or set ZSS_MODEL_LAYOUT_DETECTOR",
        "layout.sd21base (only for the sd21base backbone), or set ZSS_MODEL_LAYOUT_SD21BASE",
        "`zsstudio download layout` fetches them all",
        "ZSS_MODEL_LAYOUT_SD15",
    ):
        assert part in message
    assert "LocalEntryNotFoundError" not in message


def test_with_everything_else_present_the_message_names_only_the_one(tiny_sd15_dir, local_model):
    local_model("layout", "sd15", tiny_sd15_dir)
    local_model("layout", "sd21base", tiny_sd15_dir)
    local_model("layout", "detector", tiny_sd15_dir / "absent")
    missing = Registry.load().missing("layout")
    assert [spec.key for spec, _ in missing] == ["layout.detector"]
    assert missing[0][1] == "the path does not exist"


def test_an_unreachable_hub_fails_at_once(empty_hub_cache, monkeypatch):
    """HF_HUB_OFFLINE not set, but nothing answers: one short probe, not the Hub's retries."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", f"http://127.0.0.1:{port}")
    started = time.perf_counter()
    with pytest.raises(ModelUnavailable, match="cannot reach 127.0.0.1") as raised:
        Registry.load().resolve("gan", "cat256")
    assert time.perf_counter() - started < 2
    assert "HF_HUB_OFFLINE=1" in str(raised.value)


def test_a_server_that_never_answers_fails_after_the_probe_timeout(empty_hub_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(downloads, "PROBE_TIMEOUT_S", 0.3)
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", "http://127.0.0.1:9")

    def hangs(*args, **kwargs):
        time.sleep(5)

    monkeypatch.setattr(socket, "create_connection", hangs)
    started = time.perf_counter()
    with pytest.raises(ModelUnavailable, match="no answer in 0.3 s"):
        Registry.load().resolve("compression", "amused")
    assert time.perf_counter() - started < 2


def test_download_errors_are_told_in_plain_words():
    from huggingface_hub.errors import LocalEntryNotFoundError

    assert download_failure(LocalEntryNotFoundError("jargon")) == (
        "the Hub could not be reached and no copy is cached"
    )
    assert download_failure(ValueError("checksum mismatch: a\nmore")) == "checksum mismatch: a"


def test_zsstudio_models_says_what_is_here_and_how_to_fetch_the_rest(
    empty_hub_cache, tiny_sd15_dir, local_model, capsys
):
    local_model("layout", "sd15", tiny_sd15_dir)
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "here    layout.sd15" in out
    assert "MISSING layout.detector" in out and "(only for the layout score)" in out
    assert "fetch what is missing: zsstudio download layout" in out
    assert "[stylegan2-church-config-f.pt]" in out  # one repo, four files: each is named
    assert main(["models", "--json"]) == 0
    rows = {row["component"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["layout.sd15"]["downloaded"] == "yes"
    assert rows["speech.speaker"]["only_for"] == "speaker similarity"


def test_about_shows_each_models_file_and_whether_it_is_here(
    empty_hub_cache, tiny_sd15_dir, local_model
):
    from engines.capabilities import CAPABILITIES
    from tabs.about import about_markdown

    local_model("layout", "sd15", tiny_sd15_dir)
    text = about_markdown(list(CAPABILITIES), Registry.load())
    assert f"| `layout.sd15` | every run | `{tiny_sd15_dir}` | local copy |" in text
    assert "| **no**: set `ZSS_MODEL_LAYOUT_DETECTOR` |" in text
    assert "Fetch the missing ones with `zsstudio download gan`." in text
    for name in ("cat", "church", "horse", "ffhq"):
        assert f"stylegan2-{name}-config-f.pt" in text
