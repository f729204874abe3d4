"""The speech engine end to end on tiny models loaded through the registry: text to speech,
voice conversion, timbre and style apart, recipes, the CLI, and every bad input."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import soundfile as sf
from tiny_speech import harmonic_tone, tiny_speech_models

from engines.cli import main
from engines.errors import InputError, ModelUnavailable
from engines.hashing import file_sha256
from engines.registry import override_variable
from engines.speech import TTSRequest, VCRequest
from engines.speech.style import STYLE_CLIPS
from engines.speech.text import MAX_TEXT_CHARS
from engines.studio import Studio

TEXT = "Hello world. This is a test!"
DEVICE = os.environ.get("ZSS_TEST_DEVICE", "cpu")  # the accelerator check sets cuda


@pytest.fixture(scope="module")
def models():
    """The tiny components, pointed at through the registry's override variables."""
    paths = tiny_speech_models()
    with pytest.MonkeyPatch.context() as patch:
        for component, path in paths.items():
            patch.setenv(override_variable("speech", component), str(path))
        yield paths


@pytest.fixture(scope="module")
def engine(models):
    return Studio(device=DEVICE).engine("speech")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    paths = {
        "voice": folder / "voice.wav",
        "style": folder / "style.wav",
        "source": folder / "source.flac",
    }
    sf.write(paths["voice"], harmonic_tone(120.0, 3.0, 16000, 0.05, 4), 16000, subtype="PCM_16")
    sf.write(paths["style"], harmonic_tone(220.0, 2.5, 22050, 0.1, 6), 22050)
    sf.write(paths["source"], harmonic_tone(150.0, 2.0, 44100, 0.05, 5), 44100)
    return {name: str(path) for name, path in paths.items()}


def test_tts_speaks_each_sentence_in_the_cloned_voice_and_measures_it(engine, clips):
    seen = []
    result = engine.run(
        TTSRequest(text=TEXT, voice=clips["voice"], seed=3), lambda f, what: seen.append(what)
    )
    assert result.sample_rate == 24000 and result.audio.dtype == np.float32
    assert result.duration > 0.5 and np.all(np.isfinite(result.audio))
    assert result.metrics["sentences"] == 2
    assert result.metrics["duration_s"] == pytest.approx(result.duration)
    assert result.metrics["rtf"] > 0
    assert -1.0 <= result.metrics["similarity_output_vs_voice"] <= 1.0
    assert "Sentence 1 of 2" in seen and "Sentence 2 of 2" in seen
    assert result.recipe.params["task"] == "tts" and result.recipe.seed == 3
    assert set(result.recipe.models) == {"speaker", "tts", "codec"}
    assert not engine.manager._loaded["speech"].components.get("knn_vc")  # VC parts not loaded


def test_tts_is_reproducible_from_its_recipe(engine, clips):
    first = engine.run(TTSRequest(text="One sentence here.", voice=clips["voice"], seed=7))
    again = engine.run_recipe(first.recipe)
    np.testing.assert_array_equal(first.audio, again.audio)


def test_tts_with_a_style_clip_converts_to_the_voices_timbre(engine, clips):
    result = engine.run(TTSRequest(text=TEXT, voice=clips["voice"], style=clips["style"]))
    assert result.duration > 0.5
    assert {"similarity_output_vs_voice", "similarity_style_vs_voice"} <= set(result.metrics)
    parts = ("rtf_generation", "rtf_features", "rtf_matching", "rtf_vocoder")
    assert all(result.metrics[key] > 0 for key in parts)
    assert sum(result.metrics[key] for key in parts) <= result.metrics["rtf"]
    assert set(result.recipe.models) == {"speaker", "tts", "codec", "wavlm", "vocoder"}
    assert len(result.recipe.models["vocoder"]["sha256"]) == 64


def test_vc_keeps_the_source_length_and_reports_each_parts_speed(engine, clips):
    result = engine.run(VCRequest(source=clips["source"], voice=clips["voice"]))
    assert result.duration == pytest.approx(2.0, abs=0.05)  # 320-sample hop, 16 -> 24 kHz
    for key in ("rtf", "rtf_features", "rtf_matching", "rtf_vocoder"):
        assert result.metrics[key] > 0, key
    assert {"similarity_output_vs_voice", "similarity_source_vs_voice"} <= set(result.metrics)
    assert result.metrics["k"] == 4
    assert any("kNN-VC matches better" in note for note in result.notes)  # 3 s voice clip


def test_vc_with_a_style_clip_reports_where_the_style_landed(engine, clips):
    result = engine.run(
        VCRequest(source=clips["source"], voice=clips["voice"], style=clips["style"])
    )
    metrics = result.metrics
    assert metrics["style_f0_median_hz"] == pytest.approx(220.0, rel=0.05)
    assert metrics["rtf_style"] > 0 and "applied_duration_factor" in metrics
    assert result.recipe.params["style"] == clips["style"]


def test_result_saves_a_labelled_wav_metrics_and_recipe(engine, clips, tmp_path):
    result = engine.run(VCRequest(source=clips["source"], voice=clips["voice"], k=2))
    names = sorted(path.name for path in result.save(tmp_path))
    assert names == [  # inputs/ holds the clips the recipe names
        "metrics.json",
        "recipe.json",
        "source-source.flac",
        "vc.wav",
        "voice-voice.wav",
    ]
    with sf.SoundFile(tmp_path / "vc.wav") as wav:
        assert wav.samplerate == 24000 and "Synthetic" in wav.title
    assert json.loads((tmp_path / "metrics.json").read_text()) == json.loads(
        json.dumps(result.metrics)
    )


def test_wer_loads_whisper_only_when_asked_and_reports_transcripts(engine, clips):
    said = engine.run(TTSRequest(text=TEXT, voice=clips["voice"], wer=True))
    assert said.metrics["wer"] >= 0.0 and isinstance(said.metrics["transcript"], str)
    assert "asr" in said.recipe.models
    converted = engine.run(VCRequest(source=clips["source"], voice=clips["voice"], wer=True))
    assert converted.metrics["wer_vs_source_transcript"] >= 0.0
    assert {"source_transcript", "transcript"} <= set(converted.metrics)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (TTSRequest(text="", voice="x.wav"), "text is empty"),
        (TTSRequest(text="a" * (MAX_TEXT_CHARS + 1), voice="x.wav"), f"limit is {MAX_TEXT_CHARS}"),
        (TTSRequest(text="Hi there.", voice=None), "No voice clip"),
        (TTSRequest(text="Hi there.", voice="x.wav", temperature=3.0), "temperature"),
        (VCRequest(source=None, voice="x.wav"), "No source clip"),
        (VCRequest(source="x.wav", voice="x.wav", k=0), "k is 0; it must be 1 to 32"),
        (VCRequest(source="x.wav", voice="<in-memory audio>"), "pass the clip as a file"),
    ],
)
def test_bad_requests_are_refused_before_any_model_runs(request_, message):
    with pytest.raises(InputError, match=message):
        request_.validate()


def test_bad_clips_are_refused_by_the_engine(engine, clips, tmp_path):
    silent, short, fake = tmp_path / "silent.wav", tmp_path / "short.wav", tmp_path / "fake.wav"
    sf.write(silent, np.zeros(48000, dtype=np.float32), 16000)
    sf.write(short, harmonic_tone(120.0, 0.6), 16000)
    fake.write_text("not audio at all")
    cases = [
        (TTSRequest(text=TEXT, voice=str(silent)), "voice clip is silent"),
        (TTSRequest(text=TEXT, voice=clips["voice"], style=str(short)), "style clip has 0.6"),
        (VCRequest(source=str(fake), voice=clips["voice"]), "cannot be read as audio"),
        (VCRequest(source=clips["source"], voice=str(tmp_path / "none.wav")), "does not exist"),
        (VCRequest(source=clips["source"], voice=(16000, np.zeros(100))), "voice clip is silent"),
    ]
    for request, message in cases:
        with pytest.raises(InputError, match=message):
            engine.run(request)


def test_missing_weights_name_the_component_and_the_fix(models, monkeypatch, clips, tmp_path):
    monkeypatch.setenv(override_variable("speech", "vocoder"), str(tmp_path / "absent.pt"))
    engine = Studio(device=DEVICE).engine("speech")
    with pytest.raises(ModelUnavailable, match="ZSS_MODEL_SPEECH_VOCODER"):
        engine.run(VCRequest(source=clips["source"], voice=clips["voice"]))


def test_without_the_metric_models_speech_is_made_and_the_metrics_say_why(
    models, monkeypatch, clips, tmp_path
):
    """The speaker-similarity model and Whisper are for metrics only."""
    monkeypatch.setenv(override_variable("speech", "speaker"), str(tmp_path / "no-speaker"))
    monkeypatch.setenv(override_variable("speech", "asr"), str(tmp_path / "no-whisper"))
    engine = Studio(device=DEVICE).engine("speech")
    said = engine.run(TTSRequest(text=TEXT, voice=clips["voice"], wer=True))
    assert said.duration > 0.5
    assert said.metrics["similarity_output_vs_voice"] == (
        "not available (model speech.speaker missing)"
    )
    assert said.metrics["wer"] == "not available (model speech.asr missing)"
    assert {"speaker", "asr"}.isdisjoint(said.recipe.models)
    converted = engine.run(VCRequest(source=clips["source"], voice=clips["voice"], wer=True))
    assert converted.metrics["wer_vs_source_transcript"].startswith("not available")


def test_a_tts_checkpoint_whose_prompt_layout_differs_is_refused_at_load(
    models, monkeypatch, clips, tmp_path
):
    folder = tmp_path / "pocket-tts"
    shutil.copytree(models["tts"], folder)
    (folder / "chat_template.jinja").write_text("{{ messages[0]['content'][1]['text'] }}")
    monkeypatch.setenv(override_variable("speech", "tts"), str(folder))
    engine = Studio(device=DEVICE).engine("speech")
    with pytest.raises(ModelUnavailable, match="chat template does not render one voice"):
        engine.run(TTSRequest(text=TEXT, voice=clips["voice"]))


def test_cli_tts_and_vc_write_labelled_wavs_and_recipes(models, clips, tmp_path, capsys):
    out = tmp_path / "said.wav"
    assert (
        main(["--device", DEVICE, "tts", "--text", TEXT, "--voice", clips["voice"], "-o", str(out)])
        == 0
    )
    printed = capsys.readouterr().out
    assert str(out) in printed and '"similarity_output_vs_voice"' in printed
    with sf.SoundFile(out) as wav:
        assert wav.samplerate == 24000 and "Synthetic" in wav.title
    recipe = json.loads(out.with_suffix(".recipe.json").read_text())
    assert recipe["params"]["task"] == "tts" and recipe["params"]["text"] == TEXT

    converted = tmp_path / "vc.wav"
    argv = ["vc", clips["source"], "--voice", clips["voice"], "--style", clips["style"]]
    assert main(["--device", DEVICE, *argv, "-o", str(converted)]) == 0
    assert sf.info(str(converted)).samplerate == 24000
    assert (
        main(
            [
                "--device",
                DEVICE,
                "run",
                str(converted.with_suffix(".recipe.json")),
                "-o",
                str(tmp_path / "again"),
            ]
        )
        == 0
    )
    assert (tmp_path / "again" / "vc.wav").is_file()


def test_a_single_file_recipe_runs_after_its_folder_moves(models, clips, tmp_path):
    """`tts -o x.wav` writes x.recipe.json and the voice clip in x.inputs/ beside it: the
    folder moves, the original clip goes, and the recipe still makes the same bytes."""
    voice = tmp_path / "my voice.wav"
    shutil.copyfile(clips["voice"], voice)
    work = tmp_path / "work"
    out = work / "said.wav"
    argv = ["tts", "--text", TEXT, "--voice", str(voice), "--seed", "3", "-o", str(out)]
    assert main(["--device", DEVICE, *argv]) == 0
    recipe = json.loads((work / "said.recipe.json").read_text())
    assert recipe["params"]["voice"] == "said.inputs/voice-my_voice.wav"
    assert recipe["inputs"]["voice"]["sha256"] == file_sha256(voice)
    assert (work / "said.inputs" / "voice-my_voice.wav").read_bytes() == voice.read_bytes()

    moved = tmp_path / "elsewhere"
    work.rename(moved)
    voice.unlink()
    again = tmp_path / "again"
    assert main(["--device", DEVICE, "run", str(moved / "said.recipe.json"), "-o", str(again)]) == 0
    assert (again / "tts.wav").read_bytes() == (moved / "said.wav").read_bytes()


def test_cli_bad_input_exits_2_and_writes_nothing(models, clips, tmp_path, capsys):
    out = tmp_path / "never.wav"
    assert main(["tts", "--text", " ", "--voice", clips["voice"], "-o", str(out)]) == 2
    assert "text is empty" in capsys.readouterr().err
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, dtype=np.float32), 16000)
    assert (
        main(["--device", DEVICE, "vc", clips["source"], "--voice", str(silent), "-o", str(out)])
        == 2
    )
    assert "silent" in capsys.readouterr().err
    assert not out.exists() and not out.with_suffix(".recipe.json").exists()


# -- voice and style clips analysed once ------------------------------------------------


def _parts(engine):
    with engine.manager.use(engine.name) as parts:
        return parts.get("knn_vc"), parts.get("tts")


def test_voice_conversion_with_the_cached_voice_matches_a_fresh_run(engine, clips, tmp_path):
    request = VCRequest(source=clips["source"], voice=clips["voice"], style=clips["style"])
    knn_vc, _ = _parts(engine)
    knn_vc.voice_features.clear()
    STYLE_CLIPS.clear()
    fresh = engine.run(request)
    hits = knn_vc.voice_features.hits
    cached = engine.run(request)
    assert knn_vc.voice_features.hits == hits + 1 and len(knn_vc.voice_features) == 1
    np.testing.assert_array_equal(fresh.audio, cached.audio)
    other_voice = tmp_path / "other_voice.wav"
    sf.write(other_voice, harmonic_tone(180.0, 3.0, 16000, 0.05, 4), 16000)
    other = engine.run(VCRequest(source=clips["source"], voice=str(other_voice)))
    assert len(knn_vc.voice_features) == 2 and not np.array_equal(other.audio, fresh.audio)


def test_tts_with_a_cached_voice_prompt_matches_a_fresh_run(engine, clips):
    request = TTSRequest(text="One sentence.", voice=clips["voice"], style=clips["style"], seed=5)
    knn_vc, cloner = _parts(engine)
    cloner.voices.clear()
    knn_vc.voice_features.clear()
    fresh = engine.run(request)
    cached = engine.run(request)
    assert cloner.voices.hits >= 1 and knn_vc.voice_features.hits >= 1
    np.testing.assert_array_equal(fresh.audio, cached.audio)
