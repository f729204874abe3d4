"""The API as a newcomer calls it: device-sized defaults from the request (a layout call that
leaves size and steps out runs at the CPU values on a CPU), optional inputs left out, short
output names, and typed values past their limits refused in the request's words, never
clamped or rounded in silence."""

from __future__ import annotations

import json
import re

import pytest
from app_server import served
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from tiny_layout import save_tiny_grounding_dino

import app
from engines.registry import override_variable

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def client(tiny_sd15_dir, tmp_path_factory):
    detector = save_tiny_grounding_dino(tmp_path_factory.mktemp("tiny-grounding-dino"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(override_variable("layout", "sd15"), str(tiny_sd15_dir))
        patch.setenv(override_variable("layout", "detector"), str(detector))
        demo = app.build_demo(device="cpu")
        with served(demo) as url:
            yield Client(url, verbose=False)


def test_a_layout_call_leaving_size_and_steps_out_runs_at_the_cpu_values(client):
    image, overlay, heatmaps, scores, metrics, recipe = client.predict(
        "a photo of a cat", score=False, api_name="/layout_to_image"
    )
    from PIL import Image

    assert Image.open(image).size == (256, 256)
    params = json.load(open(recipe))["params"]
    assert (params["width"], params["height"], params["steps"]) == (256, 256, 20)
    described = client.view_api(return_format="dict", print_info=False)
    endpoint = described["named_endpoints"]["/layout_to_image"]
    assert "width 512 px on a GPU, 256 on a CPU" in endpoint["description"]
    width = next(p for p in endpoint["parameters"] if p["parameter_name"] == "width")
    assert width["parameter_has_default"] and width["parameter_default"] is None
    assert "left out: 512 px on a GPU, 256 on a CPU" in width["python_type"]["description"]


def test_outputs_have_short_names_and_files_say_what_they_are(client):
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    for name, endpoint in endpoints.items():
        for value in endpoint["returns"]:
            assert re.fullmatch(r"[a-z][a-z_0-9]{0,19}", value["label"]), (name, value["label"])
        for parameter in endpoint["parameters"]:
            assert "FileData" not in parameter["python_type"]["description"], name
    tts = {p["parameter_name"]: p for p in endpoints["/tts"]["parameters"]}
    assert tts["style"]["parameter_has_default"] and tts["style"]["parameter_default"] is None
    assert not tts["voice"]["parameter_has_default"]  # a run needs a voice
    assert [r["label"] for r in endpoints["/tts"]["returns"]] == [
        "audio",
        "metrics",
        "recipe",
        "notes",
    ]
    video = [p["parameter_name"] for p in endpoints["/subject_video"]["parameters"]]
    assert "keyframes" in video and "canvas" not in video


def test_every_optional_input_can_be_left_out(client, tmp_path):
    """Each call names only what a run cannot do without; the request's own message comes
    back (a missing model, an empty text), never "No value provided for required argument"."""
    voice = tmp_path / "voice.wav"
    import numpy as np
    import soundfile

    soundfile.write(voice, np.zeros(16000, dtype=np.float32), 16000)
    calls = {
        "/tts": {"voice": handle_file(str(voice))},
        "/voice_convert": {"source": handle_file(str(voice)), "voice": handle_file(str(voice))},
        "/subject_video": {},
        "/adapt_gan": {},
        "/nerf_edit": {"scene": handle_file(str(voice))},
        "/nerf_render": {"scene": handle_file(str(voice))},
    }
    for api_name, given in calls.items():
        with pytest.raises(AppError) as refused:
            client.predict(**given, api_name=api_name)
        assert "required argument" not in str(refused.value), api_name


@pytest.mark.parametrize(
    ("given", "ours"),
    [
        ({"steps": 100000}, "steps is 100000; it must be 1 to 150."),
        ({"iterations": 2.5}, "iterations must be a whole number, got 2.5."),
        ({"width": 100}, "Width 100 is not a multiple of 8"),
        ({"width": 32}, "width is 32; it must be 64 to 2048 px."),
    ],
)
def test_typed_values_past_their_limits_get_the_requests_message(client, given, ours):
    with pytest.raises(AppError, match=re.escape(ours)):
        client.predict("a photo of a cat", **given, api_name="/layout_to_image")


def test_text_over_the_limit_is_refused_naming_it(client, tmp_path):
    from engines.speech.text import MAX_TEXT_CHARS

    voice = tmp_path / "voice.wav"
    import numpy as np
    import soundfile

    soundfile.write(voice, np.zeros(16000, dtype=np.float32), 16000)
    with pytest.raises(AppError, match=str(MAX_TEXT_CHARS)):
        client.predict("Hello there. " * 400, handle_file(str(voice)), api_name="/tts")


def test_no_number_box_clamps_or_rounds():
    """Every declared number is a box with no bounds and no precision: Gradio's slider box
    clamps a typed value in the browser, and `precision` rounds 2.5 to 2, both in silence."""
    demo = app.build_demo(device="cpu")
    numbers = [b for b in demo.blocks.values() if type(b).__name__ == "Number"]
    assert len(numbers) >= 40
    assert not [b for b in demo.blocks.values() if type(b).__name__ == "Slider"]
    assert all(b.minimum is None and b.maximum is None and b.precision is None for b in numbers)
    texts = [b for b in demo.blocks.values() if type(b).__name__ == "Textbox"]
    assert all(b.max_length is None for b in texts)


def test_a_k_past_the_choices_or_the_range_is_refused_in_our_words(client, tmp_path):
    import numpy as np
    import soundfile
    from PIL import Image

    photo, clip = tmp_path / "photo.png", tmp_path / "clip.wav"
    Image.new("RGB", (16, 16)).save(photo)
    soundfile.write(clip, np.zeros(16000, dtype=np.float32), 16000)
    with pytest.raises(
        AppError, match=re.escape("Unknown codebook size K 99999; choose one of 16")
    ):
        client.predict(handle_file(str(photo)), codebook_size=99999, api_name="/compress")
    with pytest.raises(AppError, match=re.escape("k is 99999; it must be 1 to 32.")):
        client.predict(
            handle_file(str(clip)), handle_file(str(clip)), k=99999, api_name="/voice_convert"
        )


def test_a_whole_number_typed_into_a_dropdown_is_taken():
    from engines.compression.requests import CompressRequest
    from engines.fields import declaration

    spec, _ = declaration(CompressRequest, "codebook_size")
    assert spec.check("512") == 512
