"""Voice and style clips are analysed once: a second run with the same clip takes the cached
WavLM features, voice latents and prosody, and makes exactly the audio a fresh run makes."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf
import torch
from tiny_speech import harmonic_tone, tiny_speech_models

from engines.registry import override_variable
from engines.speech import TTSRequest, VCRequest
from engines.speech.clip_cache import ClipCache
from engines.speech.style import STYLE_CLIPS, measure, style_prosody
from engines.studio import Studio

DEVICE = os.environ.get("ZSS_TEST_DEVICE", "cpu")


@pytest.fixture(scope="module")
def engine():
    paths = tiny_speech_models()
    with pytest.MonkeyPatch.context() as patch:
        for component, path in paths.items():
            patch.setenv(override_variable("speech", component), str(path))
        yield Studio(device=DEVICE).engine("speech")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    made = {
        "voice": (harmonic_tone(120.0, 3.0, 16000, 0.05, 4), 16000),
        "other_voice": (harmonic_tone(180.0, 3.0, 16000, 0.05, 4), 16000),
        "style": (harmonic_tone(220.0, 2.5, 16000, 0.1, 6), 16000),
        "source": (harmonic_tone(150.0, 2.0, 16000, 0.05, 5), 16000),
    }
    paths = {}
    for name, (samples, rate) in made.items():
        paths[name] = str(folder / f"{name}.wav")
        sf.write(paths[name], samples, rate)
    return paths


def _parts(engine):
    with engine.manager.use(engine.name) as parts:
        return parts.get("knn_vc"), parts.get("tts")


def test_the_cache_keys_on_samples_and_analysis_and_keeps_within_its_budget():
    cache: ClipCache = ClipCache(max_bytes=3 * 400, max_entries=8)
    calls = []

    def compute(samples):
        calls.append(1)
        return torch.from_numpy(samples.astype(np.float32) * 2)

    a, b = np.zeros(100, np.float32), np.ones(100, np.float32)
    first = cache.get(a, "x", compute)
    assert cache.get(a.copy(), "x", compute) is first and len(calls) == 1  # same content
    cache.get(a, "y", compute)  # another analysis of the same clip
    cache.get(b, "x", compute)
    assert len(calls) == 3 and cache.nbytes == 3 * 400
    cache.get(a, "x", compute)  # a is now the most recent; the next entry evicts (a, "y")
    cache.get(np.full(100, 2, np.float32), "x", compute)
    assert len(cache) == 3 and cache.nbytes <= 3 * 400
    cache.get(a, "x", compute)
    assert len(calls) == 4  # (a, "x") survived
    cache.get(a, "y", compute)
    assert len(calls) == 5  # (a, "y") was the least recently used


def test_a_result_bigger_than_the_budget_is_returned_but_not_kept():
    cache: ClipCache = ClipCache(max_bytes=100)
    out = cache.get(np.zeros(100, np.float32), "x", lambda s: torch.zeros(1000))
    assert out.numel() == 1000 and len(cache) == 0


def test_style_prosody_is_measure_remembered(clips):
    samples, rate = sf.read(clips["style"], dtype="float32")
    STYLE_CLIPS.clear()
    remembered = style_prosody(samples, rate, -20.0)
    assert remembered == measure(samples, rate, -20.0)
    assert style_prosody(samples, rate, -20.0) is remembered
    assert style_prosody(samples, rate, -10.0) is not remembered  # the level is in the key


def test_voice_conversion_with_the_cached_voice_matches_a_fresh_run(engine, clips):
    request = VCRequest(source=clips["source"], voice=clips["voice"], style=clips["style"])
    knn_vc, _ = _parts(engine)
    knn_vc.voice_features.clear()
    STYLE_CLIPS.clear()
    fresh = engine.run(request)
    hits = knn_vc.voice_features.hits
    cached = engine.run(request)
    assert knn_vc.voice_features.hits == hits + 1 and len(knn_vc.voice_features) == 1
    np.testing.assert_array_equal(fresh.audio, cached.audio)
    other = engine.run(VCRequest(source=clips["source"], voice=clips["other_voice"]))
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
