"""`zsstudio nerf-fit`, `nerf-edit` and `nerf-render`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..commands import add_request_arguments, progress_bar, request_from_args
from ..errors import InputError
from ..outputs import write_bytes
from .requests import EditRequest, ReconstructRequest, RenderRequest


def add_commands(commands, make_studio) -> None:
    fit = commands.add_parser(
        "nerf-fit",
        help="fit a NeRF in Stable Diffusion's latent space to a captured scene",
        description="Reads transforms.json (nerfstudio, instant-ngp, Blender), LLFF "
        "poses_bounds.npy or COLMAP sparse/0 scenes, as a folder or a zip; 'example' is the built-in scene. "
        "Writes the scene file to -o and, beside it, <name>-preview.png, <name>-metrics.json "
        "and <name>-recipe.json (zsstudio run re-runs it).",
    )
    fit.add_argument("scene", help="scene folder or zip, or 'example'")
    add_request_arguments(fit, ReconstructRequest)
    fit.add_argument("-o", "--output", type=Path, default=Path("scene.nerf"))
    fit.set_defaults(handler=lambda args: _fit(args, make_studio))

    edit = commands.add_parser(
        "nerf-edit",
        help="edit a fitted scene file toward a target prompt (Delta Denoising Score)",
        description="Writes the edited scene file to -o and, beside it, <name>.mp4 (original "
        "and edited side by side), <name>-metrics.json and <name>-recipe.json.",
    )
    edit.add_argument("scene", type=Path, help="a scene file from nerf-fit")
    add_request_arguments(edit, EditRequest)
    edit.add_argument("-o", "--output", type=Path, default=Path("edited.nerf"))
    edit.set_defaults(handler=lambda args: _edit(args, make_studio))

    render = commands.add_parser(
        "nerf-render",
        help="orbit video (and a still) of a scene file, optionally beside another",
        description="Writes the mp4 to -o and, beside it, <name>.png (the still), "
        "<name>-metrics.json and <name>-recipe.json.",
    )
    render.add_argument("scene", type=Path, help="a scene file")
    render.add_argument("--compare", type=Path, help="a second scene file shown beside it")
    add_request_arguments(render, RenderRequest)
    render.add_argument("-o", "--output", type=Path, default=Path("orbit.mp4"))
    render.set_defaults(handler=lambda args: _render(args, make_studio))


def _suffix(output: Path, suffix: str) -> None:
    if output.suffix.lower() != suffix:
        raise InputError(f"The output must be a {suffix} file; got {output}.")


def _run(make_studio, args, request, what: str):
    with progress_bar(what) as progress:
        return make_studio(args).engine("nerf").run(request, progress)


def _beside(result, output: Path, main: bytes, image_name: str | None, image) -> int:
    from ..base import metrics_json
    from ..outputs import png_bytes

    written = [write_bytes(output, main)]
    stem = output.with_suffix("")
    if image is not None and image_name:
        written.append(write_bytes(Path(f"{stem}{image_name}"), png_bytes(image)))
    metrics = metrics_json(result.metrics).encode("utf-8")
    written.append(write_bytes(Path(f"{stem}-metrics.json"), metrics))
    written += result.recipe.save_beside(Path(f"{stem}-recipe.json"))
    for path in written:
        print(path)
    if result.cancelled:
        print(f"stopped after {result.steps_done} steps", file=sys.stderr)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(json.dumps(result.metrics, indent=2, default=str))
    return 0


def _fit(args: argparse.Namespace, make_studio) -> int:
    _suffix(args.output, ".nerf")
    request = request_from_args(ReconstructRequest, args, scene=args.scene)
    result = _run(make_studio, args, request, "nerf-fit")
    return _beside(result, args.output, result.scene, "-preview.png", result.preview)


def _edit(args: argparse.Namespace, make_studio) -> int:
    _suffix(args.output, ".nerf")
    request = request_from_args(EditRequest, args, scene=str(args.scene))
    result = _run(make_studio, args, request, "nerf-edit")
    code = _beside(result, args.output, result.scene, ".png", result.preview)
    print(write_bytes(args.output.with_suffix(".mp4"), result.video))
    return code


def _render(args: argparse.Namespace, make_studio) -> int:
    _suffix(args.output, ".mp4")
    compare = str(args.compare) if args.compare else None
    request = request_from_args(RenderRequest, args, scene=str(args.scene), compare=compare)
    result = _run(make_studio, args, request, "nerf-render")
    return _beside(result, args.output, result.video, ".png", result.still)
