"""Speech benchmark: real-time factor of text to speech and voice conversion and of their parts
(voice prompt, generation; WavLM features, kNN matching, vocoder, style move), and peak memory.
Prints JSON.

    python benchmarks/speech.py                      # tiny random models (plumbing speed only)
    python benchmarks/speech.py --full-size          # released architectures, random weights
    python benchmarks/speech.py --real               # the registry's checkpoints (downloads)
    python benchmarks/speech.py --model tts=/m/pocket-tts --model codec=/m/pocket-codec \\
        --model wavlm=/m/wavlm-large --model vocoder=/m/prematch_g_02500000.pt \\
        --model speaker=/m/wavlm-base-plus-sv     # local copies of the real weights

RTF = processing seconds / seconds of audio produced; below 1 is faster than real time. Model
loading is excluded (one warm-up run first). Per case, `first_run` is one run with the clip
caches emptied (the voice and style clips analysed afresh, as for a new voice), `repeated_run`
the median of --repeats runs with the same clips (their WavLM features, voice latents and
prosody remembered, as when a user makes more speech in one voice); the source and the
generated speech are analysed on every run.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ASSETS = ROOT / "assets" / "speech"
TEXT = (
    "The old lighthouse stood at the end of the pier. Every evening, its keeper climbed the "
    "ninety steps to light the lamp. Ships passed safely, and nobody thought about him at all."
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="COMPONENT=PATH",
        help="local weights for one component: tts, codec, wavlm, vocoder, speaker",
    )
    parser.add_argument("--real", action="store_true", help="use models.toml (may download)")
    parser.add_argument(
        "--full-size",
        action="store_true",
        help="random weights in the released architectures' sizes: real speed, no download",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    return parser.parse_args(argv)


def point_registry(args: argparse.Namespace) -> str:
    """Set the override variables; tiny models fill the components not given (unless --real)."""
    from engines.registry import override_variable

    given = {}
    for item in args.model:
        component, _, path = item.partition("=")
        if not path:
            raise SystemExit(f"--model takes COMPONENT=PATH, got {item!r}")
        given[component] = path
    if not args.real:
        sys.path.insert(0, str(ROOT / "tests"))
        from tiny_speech import save_speech_models, tiny_speech_models

        if args.full_size:
            root = Path(tempfile.mkdtemp(prefix="zss-speech-bench-"))
            atexit.register(shutil.rmtree, root, ignore_errors=True)
            built = save_speech_models(root, full_size=True)
        else:
            built = tiny_speech_models()
        for component, path in built.items():
            given.setdefault(component, str(path))
    for component, path in given.items():
        os.environ[override_variable("speech", component)] = path
    if args.real:
        return "registry" + (" + local overrides" if given else "")
    kind = "full-size random" if args.full_size else "tiny random"
    return kind + (" + local overrides" if args.model else "")


def peak_memory_mb(device: str) -> dict:
    from engines.peak_memory import process_peak_rss_mb

    out = {"process_peak_rss_mb": process_peak_rss_mb()}
    if device.startswith("cuda"):
        import torch

        out["cuda_peak_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def median_metrics(runs: list[dict], keys: list[str]) -> dict:
    return {
        key: round(statistics.median(run[key] for run in runs), 4)
        for key in keys
        if all(key in run for run in runs)
    }


def forget_clips(engine) -> None:
    """Empty the clip caches, so the next run analyses its voice and style clips again."""
    from engines.speech.style import STYLE_CLIPS

    with engine.manager.use(engine.name) as parts:
        parts.get("knn_vc").voice_features.clear()
        parts.get("tts").voices.clear()
    STYLE_CLIPS.clear()


def bench_tts_parts(engine, repeats: int) -> dict:
    """The TTS backend alone: voice-prompt encoding and per-sentence generation + decoding."""
    from engines.speech.audio import load_clip
    from engines.speech.text import split_sentences

    with engine.manager.use(engine.name) as parts:
        cloner = parts.get("tts")
        prompt = load_clip(str(ASSETS / "voice_low.wav"), "voice", cloner.sample_rate, 15, True)
        sentences = split_sentences(TEXT)
        encode, speak, audio_seconds = [], [], []
        for _ in range(repeats):
            started = time.perf_counter()
            voice = cloner.encode_voice(prompt.samples)
            encode.append(time.perf_counter() - started)
            started, samples = time.perf_counter(), 0
            for sentence in sentences:
                samples += len(cloner.speak(sentence, voice, 0.7))
            speak.append(time.perf_counter() - started)
            audio_seconds.append(samples / cloner.sample_rate)
    seconds = statistics.median(audio_seconds)
    return {
        "voice_prompt_s": round(prompt.duration, 2),
        "voice_encoding_s": round(statistics.median(encode), 4),
        "rtf_generation_and_decoding": round(statistics.median(speak) / seconds, 4),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    models_used = point_registry(args)

    import torch

    from engines.speech import TTSRequest, VCRequest
    from engines.studio import Studio

    torch.manual_seed(0)
    studio = Studio(device=args.device)
    engine = studio.engine("speech")
    device = studio.manager.device.device
    voice, style, source = (
        str(ASSETS / n) for n in ("voice_low.wav", "style_high_fast.wav", "source.wav")
    )
    cases = {
        "tts": (TTSRequest(text=TEXT, voice=voice), ["rtf", "duration_s", "sentences"]),
        "tts_with_style": (
            TTSRequest(text=TEXT, voice=voice, style=style),
            ["rtf", "rtf_generation", "rtf_features", "rtf_matching", "rtf_vocoder", "duration_s"],
        ),
        "vc": (
            VCRequest(source=source, voice=voice),
            ["rtf", "rtf_features", "rtf_matching", "rtf_vocoder", "duration_s"],
        ),
        "vc_with_style": (
            VCRequest(source=source, voice=voice, style=style),
            ["rtf", "rtf_features", "rtf_matching", "rtf_vocoder", "rtf_style", "duration_s"],
        ),
    }
    report: dict = {
        "benchmark": "speech",
        "models": models_used,
        "device": studio.manager.device.describe(),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "repeats": args.repeats,
    }
    loading_started = time.perf_counter()
    for request, _ in cases.values():
        engine.run(request)  # warm-up: loads every component, JIT-compiles pYIN
    report["first_runs_with_loading_s"] = round(time.perf_counter() - loading_started, 2)
    for name, (request, keys) in cases.items():
        forget_clips(engine)
        first = engine.run(request).metrics  # the voice and style clips analysed afresh
        runs = [engine.run(request).metrics for _ in range(args.repeats)]  # clips remembered
        report[name] = {
            "first_run": median_metrics([first], keys),
            "repeated_run": median_metrics(runs, keys),
        }
    report["tts_parts"] = bench_tts_parts(engine, args.repeats)
    report["weights_mb"] = studio.status()["loaded"]["speech"]["weights_mb"]
    report["peak_memory"] = peak_memory_mb(device)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
