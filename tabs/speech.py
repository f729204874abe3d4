"""The Speech tab: text to speech and voice conversion, timbre and style from different clips."""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr

from engines.speech import MAX_TEXT_CHARS, OUTPUT_RATE, SpeechResult, TTSRequest, VCRequest
from engines.studio import Studio

from .common import GPU_EVENT, engine_handler, gradio_progress, metrics_rows, recipe_file

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "speech"

INTRO = f"""\
Type a text and give a few seconds of a voice to hear that voice say it, or give a recording to
hear it spoken in another voice. Optionally take the **speaking style** (pitch level and range,
pace, loudness) from a third clip, so timbre and style come from different speakers, as in
StableVC. **The paper's:** the task (StyleTTS-ZS, StableVC); neither released code or weights.
**Ours:** Pocket TTS clones the voice; kNN-VC (WavLM-Large layer 6, k nearest frames, HiFi-GAN)
moves speech to the timbre; pitch, rate and loudness are moved toward the style clip with PSOLA.
Output is {OUTPUT_RATE // 1000} kHz and **synthetic**: the WAV file says so in its metadata. Only
use voices of people who agreed to it.
"""
SYNTHETIC_LABEL = "Synthetic speech (AI-generated)"


def _clip(label: str) -> gr.Audio:
    return gr.Audio(label=label, sources=["upload", "microphone"], type="filepath")


def _example(name: str) -> str:
    return str(ASSETS / name)


def _outputs(result: SpeechResult) -> tuple[str, list, str, str]:
    folder = Path(tempfile.mkdtemp(prefix="zss-speech-"))
    wav = result.write_wav(folder / f"{result.task}-synthetic.wav")
    notes = "\n".join(f"- {note}" for note in result.notes)
    return str(wav), metrics_rows(result.metrics), recipe_file(result), notes


def build(studio: Studio) -> None:
    gr.Markdown(INTRO)
    with gr.Tabs():
        with gr.Tab("Text to speech"):
            with gr.Row():
                with gr.Column():
                    text = gr.Textbox(
                        label=f"Text (at most {MAX_TEXT_CHARS} characters; spoken sentence "
                        "by sentence)",
                        lines=4,
                        max_length=MAX_TEXT_CHARS,
                    )
                    tts_voice = _clip("Voice: timbre reference (3-15 s works best)")
                    tts_style = _clip("Style reference (optional): another speaker's manner")
                    with gr.Accordion("Settings", open=False):
                        temperature = gr.Slider(0.0, 1.5, value=0.7, step=0.05, label="Temperature")
                        pause = gr.Slider(0.0, 1.0, value=0.25, step=0.05, label="Pause (s)")
                        seed = gr.Number(value=0, precision=0, label="Seed")
                        tts_wer = gr.Checkbox(False, label="Word error rate (loads Whisper)")
                    tts_button = gr.Button("Speak", variant="primary")
                with gr.Column():
                    tts_audio = gr.Audio(label=SYNTHETIC_LABEL, type="filepath", interactive=False)
                    tts_notes = gr.Markdown()
                    tts_metrics = gr.Dataframe(headers=["metric", "value"], label="Measured")
                    tts_recipe = gr.File(label="Recipe (zsstudio run recipe.json)")
            gr.Examples(
                [
                    [
                        "Good morning. The weather is calm today, and the sea is quiet.",
                        _example("voice_low.wav"),
                        None,
                    ],
                    [
                        "Please read the letter slowly. Then put it back in the drawer.",
                        _example("voice_low.wav"),
                        _example("style_high_fast.wav"),
                    ],
                ],
                inputs=[text, tts_voice, tts_style],
            )

        with gr.Tab("Voice conversion"):
            with gr.Row():
                with gr.Column():
                    source = _clip("Source: what is said")
                    vc_voice = _clip("Voice: timbre reference (longer is better, up to 5 min)")
                    vc_style = _clip("Style reference (optional): pitch, pace and loudness")
                    with gr.Accordion("Settings", open=False):
                        k = gr.Slider(1, 16, value=4, step=1, label="k (neighbours per frame)")
                        vc_wer = gr.Checkbox(False, label="Word error rate (loads Whisper)")
                    vc_button = gr.Button("Convert", variant="primary")
                with gr.Column():
                    vc_audio = gr.Audio(label=SYNTHETIC_LABEL, type="filepath", interactive=False)
                    vc_notes = gr.Markdown()
                    vc_metrics = gr.Dataframe(headers=["metric", "value"], label="Measured")
                    vc_recipe = gr.File(label="Recipe (zsstudio run recipe.json)")
            gr.Examples(
                [
                    [_example("source.wav"), _example("voice_low.wav"), None],
                    [
                        _example("source.wav"),
                        _example("voice_low.wav"),
                        _example("style_high_fast.wav"),
                    ],
                ],
                inputs=[source, vc_voice, vc_style],
            )

    @engine_handler
    def tts(
        text,
        voice,
        style,
        temperature,
        pause,
        seed,
        wer,
        progress=gr.Progress(track_tqdm=True),  # noqa: B008 (how gradio injects progress)
    ):
        request = TTSRequest(
            text=text,
            voice=voice,
            style=style or None,
            temperature=float(temperature),
            pause_seconds=float(pause),
            seed=int(seed or 0),
            wer=bool(wer),
        )
        return _outputs(studio.engine("speech").run(request, gradio_progress(progress)))

    @engine_handler
    def voice_convert(
        source,
        voice,
        style,
        k,
        wer,
        progress=gr.Progress(track_tqdm=True),  # noqa: B008 (how gradio injects progress)
    ):
        request = VCRequest(
            source=source, voice=voice, style=style or None, k=int(k), wer=bool(wer)
        )
        return _outputs(studio.engine("speech").run(request, gradio_progress(progress)))

    tts_button.click(
        tts,
        inputs=[text, tts_voice, tts_style, temperature, pause, seed, tts_wer],
        outputs=[tts_audio, tts_metrics, tts_recipe, tts_notes],
        api_name="tts",
        **GPU_EVENT,
    )
    vc_button.click(
        voice_convert,
        inputs=[source, vc_voice, vc_style, k, vc_wer],
        outputs=[vc_audio, vc_metrics, vc_recipe, vc_notes],
        api_name="voice_convert",
        **GPU_EVENT,
    )
