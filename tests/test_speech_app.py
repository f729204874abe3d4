"""The Speech tab: its wiring, and both endpoints called through gradio_client on tiny models."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import soundfile as sf
from app_server import served
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from tiny_speech import harmonic_tone, tiny_speech_models

import app
from engines.registry import override_variable
from engines.studio import Studio

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "speech"


@pytest.fixture(scope="module")
def demo():
    with pytest.MonkeyPatch.context() as patch:
        for component, path in tiny_speech_models().items():
            patch.setenv(override_variable("speech", component), str(path))
        yield app.build_demo(tabs=["speech"], studio=Studio(device="cpu"))


def test_tab_offers_both_endpoints_with_their_inputs(demo):
    config = demo.get_config_file()
    endpoints = {dep["api_name"]: dep for dep in config["dependencies"] if dep.get("api_name")}
    assert {"tts", "voice_convert"} <= set(endpoints)
    labels = {
        component["id"]: component.get("props", {}).get("label")
        for component in config["components"]
    }
    tts_inputs = [labels[i] for i in endpoints["tts_in_tab"]["inputs"]]
    assert tts_inputs[0].startswith("Text (at most")
    assert "Style reference (optional)" in tts_inputs[2]
    assert "Synthetic speech" in labels[endpoints["voice_convert_in_tab"]["outputs"][0]]
    assert labels[endpoints["voice_convert"]["outputs"][0]] == "audio"  # the API's short name


def test_shipped_example_clips_are_short_mono_speech():
    names = sorted(path.name for path in ASSETS.glob("*.wav"))
    assert names == [
        "cards_speaker.wav",
        "reader_librivox.wav",
        "source.wav",
        "style_high_fast.wav",
        "voice_low.wav",
    ]
    sources = (ASSETS / "SOURCES.md").read_text()
    assert all(name in sources for name in names)  # every clip says where it comes from
    for path in ASSETS.glob("*.wav"):
        info = sf.info(str(path))
        assert info.channels == 1 and 16000 <= info.samplerate <= 24000
        assert 3.0 <= info.duration <= 12.0


@pytest.mark.e2e
def test_both_endpoints_through_gradio_client(demo, tmp_path):
    voice = tmp_path / "voice.wav"
    sf.write(voice, harmonic_tone(120.0, 3.0, 16000, 0.05, 4), 16000)
    with served(demo) as url:
        client = Client(url, verbose=False)
        audio, metrics, recipe, notes = client.predict(
            "Hello there. How are you?",
            handle_file(str(voice)),
            None,
            0.7,
            0.2,
            1,
            False,
            api_name="/tts",
        )
        with sf.SoundFile(audio) as wav:
            assert wav.samplerate == 24000 and "Synthetic" in wav.title
        assert metrics["sentences"] == 2 and "similarity_output_vs_voice" in metrics
        with zipfile.ZipFile(recipe) as bundle:  # the recipe carries the voice clip
            saved = bundle.read("recipe.json").decode()
            assert saved.count('"task": "tts"') == 1
            assert bundle.namelist() == ["recipe.json", "inputs/voice-voice.wav"]

        audio, metrics, _, notes = client.predict(
            handle_file(str(ASSETS / "source.wav")),
            handle_file(str(voice)),
            None,
            4,
            False,
            api_name="/voice_convert",
        )
        assert sf.info(audio).duration > 1.0
        assert "kNN-VC matches better" in notes

        with pytest.raises(AppError, match="text is empty"):
            client.predict("", handle_file(str(voice)), None, 0.7, 0.2, 0, False, api_name="/tts")
        with pytest.raises(AppError, match="No voice clip"):
            client.predict(handle_file(str(voice)), None, None, 4, False, api_name="/voice_convert")
