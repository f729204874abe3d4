"""The Speech tab: text to speech and voice conversion, timbre and style from different clips."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from engines.capabilities import offered
from engines.interface import StudioInterface
from engines.speech import OUTPUT_RATE, SpeechResult, TTSRequest, VCRequest

from .common import (
    RECIPE_LABEL,
    cpu_notice,
    intro,
    metrics_rows,
    metrics_table,
    recipe_file,
)
from .examples import examples
from .forms import Call, Form, connect

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "speech"

INTRO = f"""\
Type a text and give a few seconds of a voice to hear that voice say it, or give a recording to
hear it spoken in another voice. Optionally take the **speaking style** (pitch level and range,
pace, loudness) from a third clip, so timbre and style come from different speakers, as in
StableVC. **The paper's:** the task (StyleTTS-ZS, StableVC); neither released code or weights.
**Ours:** Pocket TTS clones the voice; kNN-VC (WavLM-Large layer 6, k nearest frames, HiFi-GAN)
moves speech to the timbre; pitch, rate and loudness are moved toward the style clip with PSOLA.
Output is {OUTPUT_RATE // 1000} kHz and **synthetic**: the WAV file says so in its metadata.
"""
CONSENT = "Only use voices of people who agreed to it."
CPU_SLOW = "a sentence of speech takes several seconds to tens of seconds to make."
SYNTHETIC_LABEL = "Synthetic speech (AI-generated)"


def _clip(label: str) -> gr.Audio:
    return gr.Audio(label=label, sources=["upload", "microphone"], type="filepath")


def _example(name: str) -> str:
    return str(ASSETS / name)


def _outputs() -> dict[str, Any]:
    """The output widgets of one task, by name."""
    audio = gr.Audio(label=SYNTHETIC_LABEL, type="filepath", interactive=False)
    notes = gr.Markdown(label="Notes")
    metrics = metrics_table("Measured")
    recipe = gr.File(label=RECIPE_LABEL, interactive=False)
    return {"audio": audio, "metrics": metrics, "recipe": recipe, "notes": notes}


def _shown(result: SpeechResult, call: Call) -> dict[str, Any]:
    folder = call.folder()
    wav = result.write_wav(folder / f"{result.task}-synthetic.wav")
    return {
        "audio": str(wav),
        "metrics": metrics_rows(result),
        "recipe": recipe_file(result, folder),
        "notes": "\n".join(f"- {note}" for note in result.notes),
    }


def build_tts(studio: StudioInterface) -> None:
    form = Form(TTSRequest)
    with gr.Row(render=False) as work:  # shown under the examples
        with gr.Column():
            form("text", lines=4, max_lines=12, placeholder="e.g. Good morning. The sea is quiet.")
            form.add("voice", _clip("Voice: timbre reference (3-15 s works best)"))
            form.add("style", _clip("Style reference (optional): another speaker's manner"))
            with gr.Accordion("Settings", open=False):
                for name in ("temperature", "pause_seconds", "seed", "wer"):
                    form(name)
            with gr.Row():
                button = gr.Button("Speak", variant="primary")
                cancel = gr.Button("Cancel", variant="stop")
        with gr.Column():
            outputs = _outputs()
    examples(
        [
            [
                "Good morning. The weather is calm today, and the sea is quiet.",
                _example("reader_librivox.wav"),
                None,
            ],
            [
                "The train leaves at seven. Please be on time.",
                _example("cards_speaker.wav"),
                None,
            ],
            [
                "Please read the letter slowly. Then put it back in the drawer.",
                _example("voice_low.wav"),
                _example("style_high_fast.wav"),
            ],
        ],
        [form.inputs["text"], form.inputs["voice"], form.inputs["style"]],
        "Speak",
    )
    work.render()

    def tts(values: dict[str, Any], call: Call) -> dict[str, Any]:
        """Text to speech in the voice of a short clip (optionally the style of another)."""
        result = studio.engine("speech").run(TTSRequest(**values), call.progress)
        return _shown(result, call)

    connect(
        button.click,
        tts,
        form,
        outputs,
        api_name="tts",
        cancel=cancel,
        gpu_duration=offered("speech").gpu_seconds,
    )


def build_vc(studio: StudioInterface) -> None:
    form = Form(VCRequest)
    with gr.Row(render=False) as work:  # shown under the examples
        with gr.Column():
            form.add("source", _clip("Source: what is said"))
            form.add("voice", _clip("Voice: timbre reference (longer is better, up to 5 min)"))
            form.add("style", _clip("Style reference (optional): pitch, pace and loudness"))
            with gr.Accordion("Settings", open=False):
                form("k")
                form("wer")
            with gr.Row():
                button = gr.Button("Convert", variant="primary")
                cancel = gr.Button("Cancel", variant="stop")
        with gr.Column():
            outputs = _outputs()
    examples(
        [
            [_example("reader_librivox.wav"), _example("cards_speaker.wav"), None],
            [_example("source.wav"), _example("voice_low.wav"), None],
            [_example("source.wav"), _example("voice_low.wav"), _example("style_high_fast.wav")],
        ],
        [form.inputs["source"], form.inputs["voice"], form.inputs["style"]],
        "Convert",
    )
    work.render()

    def voice_convert(values: dict[str, Any], call: Call) -> dict[str, Any]:
        """Say what the source recording says in the voice of another clip (kNN-VC)."""
        result = studio.engine("speech").run(VCRequest(**values), call.progress)
        return _shown(result, call)

    connect(
        button.click,
        voice_convert,
        form,
        outputs,
        api_name="voice_convert",
        cancel=cancel,
        gpu_duration=offered("speech").gpu_seconds,
    )


def build(studio: StudioInterface) -> None:
    intro(INTRO, CONSENT)
    notice = gr.Markdown(visible=False)
    with gr.Tabs():
        with gr.Tab("Text to speech"):
            build_tts(studio)
        with gr.Tab("Voice conversion"):
            build_vc(studio)
    cpu_notice(studio, notice, None, CPU_SLOW, "speech")
