"""`zsstudio tts` and `zsstudio vc`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from ..commands import add_request_arguments, progress_bar, request_from_args
from ..errors import InputError
from .requests import TTSRequest, VCRequest
from .results import SpeechResult
from .text import MAX_TEXT_CHARS


def add_commands(commands, make_studio: Callable[[argparse.Namespace], object]) -> None:
    tts = commands.add_parser(
        "tts",
        help="say a text in the voice of a reference clip",
        description="Zero-shot text to speech (Pocket TTS). With --style, the style clip is the "
        "voice prompt and kNN-VC moves the result to the --voice clip's timbre.",
    )
    text = tts.add_mutually_exclusive_group(required=True)
    text.add_argument("--text", help=f"what to say (at most {MAX_TEXT_CHARS} characters)")
    text.add_argument("--text-file", type=Path, help="read the text from a UTF-8 file")
    tts.add_argument("--voice", required=True, type=Path, help="voice (timbre) reference clip")
    tts.add_argument("--style", type=Path, help="speaking-style reference clip (optional)")
    add_request_arguments(tts, TTSRequest)
    tts.add_argument("-o", "--output", type=Path, default=Path("tts.wav"), help="output WAV")
    tts.set_defaults(handler=lambda args: _run_tts(args, make_studio))

    vc = commands.add_parser(
        "vc",
        help="say what a recording says in another voice",
        description="Zero-shot voice conversion (kNN-VC). With --style, pitch level and range, "
        "speaking rate and loudness move toward the style clip.",
    )
    vc.add_argument("source", type=Path, help="the recording to convert")
    vc.add_argument("--voice", required=True, type=Path, help="target voice (timbre) clip")
    vc.add_argument("--style", type=Path, help="speaking-style reference clip (optional)")
    add_request_arguments(vc, VCRequest)
    vc.add_argument("-o", "--output", type=Path, default=Path("vc.wav"), help="output WAV")
    vc.set_defaults(handler=lambda args: _run_vc(args, make_studio))


def _read_text(args: argparse.Namespace) -> str:
    if args.text_file is None:
        return args.text
    try:
        return args.text_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"Cannot read the text file {args.text_file}: {err}.") from err


def _clips(args: argparse.Namespace, *roles: str) -> dict[str, str | None]:
    return {role: str(getattr(args, role)) if getattr(args, role) else None for role in roles}


def _run_tts(args: argparse.Namespace, make_studio) -> int:
    request = request_from_args(
        TTSRequest, args, text=_read_text(args), **_clips(args, "voice", "style")
    )
    return _run(make_studio(args), request, args.output, "tts")


def _run_vc(args: argparse.Namespace, make_studio) -> int:
    request = request_from_args(VCRequest, args, **_clips(args, "source", "voice", "style"))
    return _run(make_studio(args), request, args.output, "vc")


def _run(studio, request, output: Path, what: str) -> int:
    if output.suffix.lower() != ".wav":
        raise InputError(f"The output must be a .wav file; got {output}.")
    with progress_bar(what) as progress:
        result: SpeechResult = studio.engine("speech").run(request, progress)
    result.write_wav(output)
    print(output)
    for path in result.recipe.save_beside(output.with_suffix(".recipe.json")):
        print(path)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(json.dumps(result.metrics, indent=2, default=str))
    return 0
