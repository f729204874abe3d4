"""The speech protocol (docs/speech.md, Evaluation): zero-shot TTS over (prompt clip, text)
pairs, measured by speaker similarity (WavLM-base-plus-sv), WER (Whisper) and real-time
factor; voice conversion between speakers, measured by similarity to the target voice and to
the source speaker. Data: real speech from Debian's pocketsphinx-testdata by default, or
LibriSpeech test-clean (utterances of 4-10 s, the prompt another utterance of the same
speaker, as the zero-shot TTS papers do)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from ..errors import InputError
from . import plots
from .report import Report, mean
from .store import ItemStore

POCKETSPHINX = Path("/usr/share/pocketsphinx/test/data")
LIBRISPEECH_SECONDS = (4.0, 10.0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("speech")
    group.add_argument(
        "--speech-tasks",
        default="tts,vc",
        help="tts, vc or both, comma separated (default %(default)s)",
    )


def _transcripts(path: Path) -> dict[str, str]:
    """pocketsphinx `transcription` files: '<s> words </s> (utterance id)'."""
    found = {}
    for line in path.read_text("utf-8").splitlines():
        match = re.match(r"\s*(?:<s>)?(.*?)(?:</s>)?\s*\(([^)]+)\)\s*$", line)
        if match:
            found[match.group(2)] = " ".join(match.group(1).split())
    return found


def pocketsphinx_set(root: Path) -> list[dict[str, Any]]:
    """Two real speakers: a LibriVox reader (five sentences) and the 'cards' speaker. TTS: each
    reader sentence spoken from a prompt of another of their sentences; VC: each speaker's
    longest clip into the other's voice."""
    reader = root / "librivox"
    cards = root / "cards"
    said = _transcripts(reader / "transcription")
    clips = {key: reader / f"{key}.wav" for key in sorted(said)}
    if len(clips) < 2 or not all(p.is_file() for p in clips.values()):
        raise InputError(f"{root} does not hold pocketsphinx-testdata's librivox clips.")
    keys = list(clips)
    items = []
    for index, key in enumerate(keys):
        prompt = keys[(index + 1) % len(keys)]
        items.append(
            {
                "id": f"tts-{key[-4:]}",
                "task": "tts",
                "prompt": str(clips[prompt]),
                "text": said[key],
                "reference": str(clips[key]),
            }  # fmt: skip
        )
    other = cards / "005.wav"
    if other.is_file():
        longest = max(clips.values(), key=lambda p: p.stat().st_size)
        items.append(
            {"id": "vc-reader-to-cards", "task": "vc", "source": str(longest), "voice": str(other)}
        )
        items.append(
            {"id": "vc-cards-to-reader", "task": "vc", "source": str(other), "voice": str(longest)}
        )
    return items


def librispeech_set(root: Path) -> list[dict[str, Any]]:
    import soundfile as sf

    by_speaker: dict[str, list[tuple[Path, str]]] = {}
    for listing in sorted(root.rglob("*.trans.txt")):
        for line in listing.read_text("utf-8").splitlines():
            utterance, _, text = line.partition(" ")
            audio = listing.parent / f"{utterance}.flac"
            if audio.is_file():
                by_speaker.setdefault(utterance.split("-")[0], []).append((audio, text.strip()))
    if not by_speaker:
        raise InputError(f"--data {root}: no LibriSpeech *.trans.txt with .flac files found.")
    speakers = sorted(by_speaker)
    items = []
    for s, speaker in enumerate(speakers):
        utterances = by_speaker[speaker]
        for u, (audio, text) in enumerate(utterances):
            seconds = sf.info(str(audio)).duration
            if (
                not LIBRISPEECH_SECONDS[0] <= seconds <= LIBRISPEECH_SECONDS[1]
                or len(utterances) < 2
            ):
                continue
            prompt = utterances[(u + 1) % len(utterances)][0]
            items.append(
                {
                    "id": f"tts-{audio.stem}",
                    "task": "tts",
                    "prompt": str(prompt),
                    "text": text.lower(),
                    "reference": str(audio),
                }  # fmt: skip
            )
            target = by_speaker[speakers[(s + 1) % len(speakers)]][0][0]
            if len(speakers) > 1:
                items.append(
                    {
                        "id": f"vc-{audio.stem}",
                        "task": "vc",
                        "source": str(audio),
                        "voice": str(target),
                    }
                )
    return items


def plan(args: argparse.Namespace) -> list[dict[str, Any]]:
    root = Path(args.data) if args.data else POCKETSPHINX
    if not root.is_dir():
        raise InputError(
            f"No speech data at {root}: install Debian's pocketsphinx-testdata "
            "(apt-get install pocketsphinx-testdata) or pass --data a LibriSpeech folder."
        )
    items = pocketsphinx_set(root) if (root / "librivox").is_dir() else librispeech_set(root)
    tasks = {t.strip() for t in args.speech_tasks.split(",") if t.strip()}
    if not tasks or tasks - {"tts", "vc"}:
        raise InputError("--speech-tasks: choose tts, vc or both.")
    return [item for item in items if item["task"] in tasks]


def evaluator(studio, args: argparse.Namespace):
    from ..speech import TTSRequest, VCRequest
    from ..speech.audio import load_clip, resample
    from ..speech.metrics import SPEAKER_RATE, cosine, speaker_embedding
    from ..speech.requests import OUTPUT_RATE

    engine = studio.engine("speech")

    def similarity(audio, clip_path: str) -> float:
        """Cosine of x-vectors: the output against a real recording."""
        clip = load_clip(clip_path, "reference", SPEAKER_RATE, 60.0)
        with engine.manager.use(engine.name) as parts:
            speaker = parts.get("speaker")
            output = speaker_embedding(
                speaker["model"], speaker["processor"], resample(audio, OUTPUT_RATE, SPEAKER_RATE)
            )
            real = speaker_embedding(speaker["model"], speaker["processor"], clip.samples)
        return cosine(output, real)

    def evaluate(item: dict[str, Any], store: ItemStore) -> dict[str, Any]:
        if item["task"] == "tts":
            result = engine.run(
                TTSRequest(text=item["text"], voice=item["prompt"], seed=0, wer=True)
            )
            m = result.metrics
            figures = {
                "sim_to_prompt": m["similarity_output_vs_voice"],
                "sim_to_reference": similarity(result.audio, item["reference"]),
                "wer": m["wer"],
                "rtf": m["rtf"],
                "duration_s": m["duration_s"],
                "transcript": m.get("transcript"),
            }
        else:
            result = engine.run(VCRequest(source=item["source"], voice=item["voice"], wer=True))
            m = result.metrics
            figures = {
                "sim_to_target": m["similarity_output_vs_voice"],
                "sim_to_source": similarity(result.audio, item["source"]),
                "sim_source_vs_target": m["similarity_source_vs_voice"],
                "wer": m["wer_vs_source_transcript"],
                "rtf": m["rtf"],
                "duration_s": m["duration_s"],
            }
        result.write_wav(store.artifacts(item) / f"{item['task']}.wav")
        return {"metrics": figures}

    return evaluate


def summarise(records: list[dict[str, Any]], args: argparse.Namespace) -> Report:
    tts = [r["metrics"] for r in records if r["item"]["task"] == "tts"]
    vc = [r["metrics"] for r in records if r["item"]["task"] == "vc"]
    rows = []
    if tts:
        rows.append(
            {
                "method": "ours, TTS (Pocket TTS)",
                "items": len(tts),
                "SIM": mean(m["sim_to_reference"] for m in tts),
                "SIM to prompt": mean(m["sim_to_prompt"] for m in tts),
                "WER": mean(m["wer"] for m in tts),
                "RTF": mean(m["rtf"] for m in tts),
            }  # fmt: skip
        )
    if vc:
        rows.append(
            {
                "method": "ours, VC (kNN-VC)",
                "items": len(vc),
                "SIM": mean(m["sim_to_target"] for m in vc),
                "SIM to source": mean(m["sim_to_source"] for m in vc),
                "WER": mean(m["wer"] for m in vc),
                "RTF": mean(m["rtf"] for m in vc),
            }  # fmt: skip
        )
    figures = {}
    if records:
        figures["similarity.png"] = plots.histogram(
            {
                "TTS: to the speaker's real recording": [m["sim_to_reference"] for m in tts],
                "VC: to the target voice": [m["sim_to_target"] for m in vc],
                "VC: to the source speaker": [m["sim_to_source"] for m in vc],
            },
            "cosine of WavLM-base-plus-sv x-vectors",
            "Speaker similarity per item",
        )
    return Report(
        capability="speech",
        title="Speech: zero-shot TTS and voice conversion",
        protocol=(
            "TTS: each text said in the voice of a prompt clip of the same speaker (another "
            "utterance); SIM is the cosine of WavLM-base-plus-sv x-vectors between our output and "
            "the speaker's real recording of that text (SIM to prompt: against the prompt), WER "
            "from Whisper against the text, RTF = synthesis seconds / audio seconds. VC: a "
            "speaker's clip converted to another speaker's voice; SIM to target and to source, "
            "WER of the output's transcript against the source's."
        ),
        columns=["method", "items", "SIM", "SIM to prompt", "SIM to source", "WER", "RTF"],
        rows=rows,
        records=records,
        settings={"data": str(args.data or POCKETSPHINX), "tasks": args.speech_tasks},
        plots=figures,
        notes=[
            "Outputs are in items/<item>/*.wav, labelled synthetic.",
        ],
    )
