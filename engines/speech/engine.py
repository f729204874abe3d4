"""The speech engine: zero-shot TTS and voice conversion, with timbre and speaking style taken
from different speakers when asked, and the output measured."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from ..base import Engine, Progress, no_progress
from ..errors import InputError
from ..parts import LoadContext, Parts
from .audio import Clip, at_rate, join_with_pauses, load_clip, normalise_loudness, resample
from .features import WAVLM_RATE
from .knn import DEFAULT_K
from .loading import PARTS
from .metrics import (
    SPEAKER_RATE,
    basic_normalise,
    cosine,
    normaliser_for,
    speaker_embedding,
    transcribe,
    word_error_rate,
)
from .requests import (
    MATCHING_GOOD_SECONDS,
    MATCHING_MAX_SECONDS,
    OUTPUT_RATE,
    PROMPT_SECONDS,
    SOURCE_MAX_SECONDS,
    STYLE_MAX_SECONDS,
    TTSRequest,
    VCRequest,
)
from .results import SpeechResult
from .style import measure, style_prosody, transfer
from .text import split_sentences
from .vc import Timings


class SpeechEngine(Engine):
    """Text to speech (Pocket TTS) and voice conversion (kNN-VC), timbre and style apart.

    Components load when a request first needs them, so text to speech alone never fetches
    WavLM-Large or the vocoder, and WER's Whisper loads only when asked for.
    """

    name = "speech"
    tasks = {TTSRequest: "synthesise", VCRequest: "convert"}

    def load(self, context: LoadContext) -> Parts:
        # component groups ("tts", "knn_vc", "asr", "speaker"), each loaded on first use
        return context.lazy(PARTS)

    # -- text to speech -------------------------------------------------------------------

    def synthesise(self, request: TTSRequest, progress: Progress = no_progress) -> SpeechResult:
        sentences = split_sentences(request.text)
        prompt_role = "style" if request.style is not None else "voice"
        prompt = load_clip(
            request.style if request.style is not None else request.voice,
            prompt_role,
            OUTPUT_RATE,
            max_seconds=PROMPT_SECONDS[1],
            pick_best=True,
        )
        voice = load_clip(request.voice, "voice", WAVLM_RATE, MATCHING_MAX_SECONDS)
        with self.manager.use(self.name) as parts:
            progress(0.0, "Loading the TTS model")
            cloner = parts.get("tts")
            if prompt.sample_rate != cloner.sample_rate:
                prompt = at_rate(prompt, cloner.sample_rate)
            knn_vc = parts.get("knn_vc") if request.style is not None else None
            used = ["speaker", "tts"] + (["knn_vc"] if knn_vc else [])

            timings = Timings()
            started = time.perf_counter()
            _seed(request.seed)
            progress(0.05, "Encoding the voice prompt")
            voice_latents = cloner.encode_voice(prompt.samples)
            pieces = []
            for index, sentence in enumerate(sentences):
                what = f"Sentence {index + 1} of {len(sentences)}"
                progress(0.1 + 0.7 * index / len(sentences), what)
                pieces.append(cloner.speak(sentence, voice_latents, request.temperature))
            speech = join_with_pauses(pieces, cloner.sample_rate, request.pause_seconds)
            timings.add("generation", started)
            if knn_vc is not None:
                progress(0.8, "Converting to the voice's timbre (kNN-VC)")
                spoken = resample(speech, cloner.sample_rate, WAVLM_RATE)
                converted = knn_vc.convert(
                    knn_vc.features(spoken, timings),
                    knn_vc.features(voice.samples, timings, remember=True),
                    DEFAULT_K,
                    timings,
                )
                audio = resample(normalise_loudness(converted), WAVLM_RATE, OUTPUT_RATE)
            else:
                audio = resample(speech, cloner.sample_rate, OUTPUT_RATE)
            elapsed = time.perf_counter() - started

            progress(0.9, "Measuring the output")
            seconds = max(len(audio) / OUTPUT_RATE, 1e-6)
            metrics = {
                "duration_s": len(audio) / OUTPUT_RATE,
                "rtf": elapsed / seconds,
                **{f"rtf_{part}": spent / seconds for part, spent in timings.seconds.items()},
                "sentences": len(sentences),
                "voice_prompt_s": prompt.duration,
            }
            contrast = {"style": at_rate(prompt, WAVLM_RATE)} if knn_vc else {}
            metrics.update(self._similarities(parts, audio, voice, contrast))
            if request.wer:
                used.append("asr")
                metrics.update(self._wer_against_text(parts, audio, request.text))
            sources = parts.sources(*used)
        notes = []
        if prompt.duration < PROMPT_SECONDS[0]:
            notes.append(
                f"The {prompt_role} prompt has {prompt.duration:.1f} s of speech; "
                f"{PROMPT_SECONDS[0]:.0f}-{PROMPT_SECONDS[1]:.0f} s clones a voice better."
            )
        progress(1.0, "Done")
        return SpeechResult(
            recipe=self.recipe(request, sources, request.seed),
            metrics=metrics,
            audio=audio,
            task="tts",
            notes=notes,
        )

    # -- voice conversion -----------------------------------------------------------------

    def convert(self, request: VCRequest, progress: Progress = no_progress) -> SpeechResult:
        source = load_clip(request.source, "source", WAVLM_RATE, SOURCE_MAX_SECONDS)
        voice = load_clip(request.voice, "voice", WAVLM_RATE, MATCHING_MAX_SECONDS)
        style = (
            load_clip(request.style, "style", WAVLM_RATE, STYLE_MAX_SECONDS)
            if request.style is not None
            else None
        )
        if int(request.k) > _frames(voice):
            raise InputError(
                f"k={request.k} is more than the voice clip's {_frames(voice)} frames."
            )
        with self.manager.use(self.name) as parts:
            progress(0.0, "Loading WavLM and the vocoder")
            knn_vc = parts.get("knn_vc")
            used = ["speaker", "knn_vc"]

            timings = Timings()
            started = time.perf_counter()
            progress(0.1, "WavLM features of the source and the voice")
            source_features = knn_vc.features(source.samples, timings)
            matching_set = knn_vc.features(voice.samples, timings, remember=True)
            progress(0.4, "Matching and vocoding")
            converted = knn_vc.convert(source_features, matching_set, int(request.k), timings)
            move = None
            if style is not None:
                progress(0.6, "Moving pitch, rate and loudness toward the style clip")
                step = time.perf_counter()
                target = style_prosody(style.samples, style.sample_rate, style.level_dbfs)
                converted, _, move = transfer(converted, WAVLM_RATE, target)
                timings.add("style", step)
            else:
                converted = normalise_loudness(converted)
            audio = resample(converted, WAVLM_RATE, OUTPUT_RATE)
            elapsed = time.perf_counter() - started

            progress(0.8, "Measuring the output")
            seconds = max(len(audio) / OUTPUT_RATE, 1e-6)
            metrics: dict[str, Any] = {
                "duration_s": len(audio) / OUTPUT_RATE,
                "rtf": elapsed / seconds,
                **{f"rtf_{part}": spent / seconds for part, spent in timings.seconds.items()},
                "matching_set_s": voice.duration,
                "k": int(request.k),
            }
            contrast = {"source": source} | ({"style": style} if style is not None else {})
            metrics.update(self._similarities(parts, audio, voice, contrast))
            if move is not None:
                metrics.update(_style_metrics(target, move, converted))
            if request.wer:
                used.append("asr")
                metrics.update(self._wer_against_source(parts, audio, source))
            sources = parts.sources(*used)
        notes = []
        if voice.duration < MATCHING_GOOD_SECONDS:
            notes.append(
                f"The voice clip has {voice.duration:.0f} s of speech; kNN-VC matches better "
                f"with more (quality grows up to about 5 minutes, {MATCHING_GOOD_SECONDS:.0f} s "
                "or more works well)."
            )
        progress(1.0, "Done")
        return SpeechResult(
            recipe=self.recipe(request, sources, None),
            metrics=metrics,
            audio=audio,
            task="vc",
            notes=notes,
        )

    # -- measurements ---------------------------------------------------------------------

    def _similarities(
        self, parts: Parts, audio: np.ndarray, voice: Clip, contrast: dict[str, Clip]
    ) -> dict[str, Any]:
        """Cosine of x-vectors: output vs. the voice clip, and each contrast clip vs. the voice
        ("not available" without the speaker model: the speech is made all the same)."""
        speaker, note = parts.optional("speaker")
        if speaker is None:
            return {"similarity_output_vs_voice": note}

        def embed(samples: np.ndarray):
            return speaker_embedding(speaker["model"], speaker["processor"], samples)

        reference = embed(voice.samples)
        output = embed(resample(audio, OUTPUT_RATE, SPEAKER_RATE))
        out = {"similarity_output_vs_voice": cosine(output, reference)}
        for name, clip in contrast.items():
            out[f"similarity_{name}_vs_voice"] = cosine(embed(clip.samples), reference)
        return out

    def _transcriber(self, asr):
        normalise = normaliser_for(asr["processor"])

        def run(samples_16k: np.ndarray) -> tuple[str, str]:
            text = transcribe(asr["model"], asr["processor"], samples_16k)
            return text, normalise(text)

        return run, normalise

    def _wer_against_text(self, parts: Parts, audio: np.ndarray, text: str) -> dict:
        asr, note = parts.optional("asr")
        if asr is None:  # Whisper is only for the metric: the speech is made all the same
            return {"wer": note}
        run, normalise = self._transcriber(asr)
        heard, heard_normalised = run(resample(audio, OUTPUT_RATE, SPEAKER_RATE))
        return {
            "wer": word_error_rate(normalise(text) or basic_normalise(text), heard_normalised),
            "transcript": heard,
        }

    def _wer_against_source(self, parts: Parts, audio: np.ndarray, source: Clip) -> dict:
        asr, note = parts.optional("asr")
        if asr is None:
            return {"wer_vs_source_transcript": note}
        run, _ = self._transcriber(asr)
        said, said_normalised = run(source.samples)
        heard, heard_normalised = run(resample(audio, OUTPUT_RATE, SPEAKER_RATE))
        return {
            "wer_vs_source_transcript": word_error_rate(said_normalised, heard_normalised),
            "source_transcript": said,
            "transcript": heard,
        }


def _style_metrics(target, move, converted: np.ndarray) -> dict[str, Any]:
    """Where the style clip is, what was moved, and where the output landed."""
    landed = measure(converted, WAVLM_RATE)
    out: dict[str, Any] = {
        "style_f0_median_hz": target.f0_median_hz,
        "output_f0_median_hz": landed.f0_median_hz,
        "style_f0_range_st": target.f0_range_semitones,
        "output_f0_range_st": landed.f0_range_semitones,
        "style_syllables_per_s": target.syllables_per_second,
        "output_syllables_per_s": landed.syllables_per_second,
        "applied_duration_factor": move.duration_factor,
        "applied_f0_range_factor": move.f0_range_factor,
    }
    return {key: value for key, value in out.items() if value is not None}


def _frames(clip: Clip) -> int:
    return max(0, (len(clip.samples) - 400) // 320 + 1)


def _seed(seed: int) -> None:
    torch.manual_seed(int(seed))
