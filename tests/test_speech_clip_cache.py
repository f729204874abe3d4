"""The clip cache: keyed by a clip's samples and the analysis, within its byte budget, and the
style clip's prosody remembered exactly as measured."""

from __future__ import annotations

import numpy as np
import torch
from tiny_speech import harmonic_tone

from engines.speech.clip_cache import ClipCache
from engines.speech.style import STYLE_CLIPS, measure, style_prosody


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


def test_style_prosody_is_measure_remembered():
    samples, rate = harmonic_tone(220.0, 2.5, 16000, 0.1, 6), 16000
    STYLE_CLIPS.clear()
    remembered = style_prosody(samples, rate, -20.0)
    assert remembered == measure(samples, rate, -20.0)
    assert style_prosody(samples, rate, -20.0) is remembered
    assert style_prosody(samples, rate, -10.0) is not remembered  # the level is in the key
