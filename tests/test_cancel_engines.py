"""Each long-running engine stops between its steps once its cancel token is set: layout
(denoising and guidance iterations), speech (sentences) and compression (coding passes). The
model manager is free afterwards and the next run completes."""

from __future__ import annotations

import pytest
import soundfile as sf
from tiny_compression import compression_studio, tiny_amused_in, tiny_photo
from tiny_speech import harmonic_tone, tiny_speech_models

from engines.cancel import CancelToken, cancellable
from engines.compression import CompressRequest
from engines.errors import Cancelled
from engines.layout import LayoutRequest
from engines.registry import override_variable
from engines.speech import TTSRequest
from engines.studio import Studio


class CancelAt:
    """A progress callback, through `cancellable`, that cancels the run when a report's text
    contains `text` for the `nth` time; records every report it was given."""

    def __init__(self, text: str, nth: int = 1):
        self.text, self.nth = text, nth
        self.token = CancelToken()
        self.seen: list[str] = []
        self.progress = cancellable(self._report, self.token)

    def _report(self, fraction: float, what: str) -> None:
        self.seen.append(what)
        if sum(self.text in s for s in self.seen) >= self.nth:
            self.token.cancel("test")


def assert_stopped_early(engine, request_factory, cancel: CancelAt) -> None:
    with pytest.raises(Cancelled, match="test"):
        engine.run(request_factory(), cancel.progress)
    status = engine.manager.status()
    assert status["busy"] is None  # the run let go of the models
    finished = []
    engine.run(request_factory(), lambda f, what: finished.append(what))
    assert len(cancel.seen) < len(finished)  # it stopped before the end,
    assert cancel.text in cancel.seen[-1]  # at the first report after the cancel


def test_layout_stops_between_denoising_steps(tiny_sd15_dir, monkeypatch):
    monkeypatch.setenv(override_variable("layout", "sd15"), str(tiny_sd15_dir))
    engine = Studio(device="cpu").engine("layout")

    def request():
        return LayoutRequest(
            prompt="a cat and a dog",
            boxes=[("a cat", 0, 0, 32, 64), ("a dog", 32, 0, 64, 64)],
            width=64,
            height=64,
            steps=8,
            guided_fraction=0.5,
            iterations=3,
            loss_threshold=0.0,
            score=False,
        )

    cancel = CancelAt("step 3/8")
    assert_stopped_early(engine, request, cancel)
    assert not any("step 4/8" in s for s in cancel.seen)


def test_layout_stops_between_guidance_iterations(tiny_sd15_dir, monkeypatch):
    monkeypatch.setenv(override_variable("layout", "sd15"), str(tiny_sd15_dir))
    engine = Studio(device="cpu").engine("layout")
    cancel = CancelAt("iteration 2")
    request = LayoutRequest(
        prompt="a cat",
        boxes=[("a cat", 0, 0, 32, 64)],
        width=64,
        height=64,
        steps=4,
        guided_fraction=1.0,
        iterations=5,
        loss_threshold=0.0,
        score=False,
    )
    with pytest.raises(Cancelled):
        engine.run(request, cancel.progress)
    assert cancel.seen[-1].endswith("iteration 2") and "step 1/4" in cancel.seen[-1]


def test_speech_stops_between_sentences(tmp_path):
    paths = tiny_speech_models()
    voice = tmp_path / "voice.wav"
    sf.write(voice, harmonic_tone(120.0, 3.0, 16000, 0.05, 4), 16000)
    with pytest.MonkeyPatch.context() as patch:
        for component, path in paths.items():
            patch.setenv(override_variable("speech", component), str(path))
        engine = Studio(device="cpu").engine("speech")

        def request():
            return TTSRequest(text="One. Two. Three. Four.", voice=str(voice), seed=1)

        cancel = CancelAt("Sentence 2 of 4")
        assert_stopped_early(engine, request, cancel)
    assert not any("Sentence 3" in s for s in cancel.seen)


def test_compression_stops_between_coding_passes(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    studio, undo = compression_studio(tiny_amused_in(base), base / "zss-cache")
    try:
        engine = studio.engine("compression")
        photo = tiny_photo(72, 52)

        def request():
            return CompressRequest(image=photo, codebook_size=16, coder="model", baselines=False)

        cancel = CancelAt("Coding tokens", nth=2)
        assert_stopped_early(engine, request, cancel)
        assert not any("Decoding" in s for s in cancel.seen)
    finally:
        undo()
