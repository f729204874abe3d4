"""The NeRF editing tab: reconstruct a scene in Stable Diffusion's latent space, edit it with a
source and a target prompt, render orbit videos and stills."""

from __future__ import annotations

from typing import Any

import gradio as gr

from engines.capabilities import offered
from engines.interface import StudioInterface
from engines.nerf.requests import EXAMPLE, EditRequest, ReconstructRequest, RenderRequest
from engines.outputs import write_bytes

from .common import (
    PIXELATED,
    RECIPE_LABEL,
    cpu_notice,
    intro,
    metrics_rows,
    metrics_table,
    recipe_file,
)
from .examples import start_here
from .forms import Call, Form, connect
from .live_run import LossPlot, stream, wire_stop

INTRO = """\
**ED-NeRF-style text-guided scene editing.** Pick the built-in example or upload a captured
scene as a zip (nerfstudio / instant-ngp `transforms.json` or Blender `transforms_*.json` with
their images; LLFF or mip-NeRF 360 `poses_bounds.npy` + `images/`; a COLMAP `sparse/0/` model +
`images/`; lens distortion is removed, `images_2/4/8/` are used when present, fisheye cameras
are refused), press **Reconstruct** to fit a NeRF that renders Stable
Diffusion 1.5 latents, then describe the scene and what it should become and press **Edit**.
**ED-NeRF's:** the NeRF in SD's latent space, the refinement layer, editing with Delta Denoising
Score. **Ours:** the TensoRF field, the schedules and regularisers, the example scene and the
metrics (the paper released no code). Scenes are fitted at 512 px by default (64x64 latents,
the resolution SD 1.5's UNet was trained on and ED-NeRF edits at); on a CPU the form starts at
256 px (32x32 latents, off the UNet's training resolution: expect weaker edits). On a CPU,
fitting takes minutes and editing with the real UNet is very slow; a GPU is the intended place.
"""
CPU_SLOW = (
    "a fit of 500 steps (1,024 rays, 64 samples each) takes about two minutes (1,000 such "
    "steps took about 4 minutes on 2 cores); an edit step with the real UNet takes several "
    "seconds at 256 px (a DDS step at 512 px took 14 s), so 30 steps take a few minutes."
)
LOSSES = LossPlot("step", {"rgb": "rgb", "latent": "latent", "guidance": "guidance"})


def scene_input(label: str) -> gr.File:
    return gr.File(label=label, file_types=[".nerf"], type="filepath")


def status_line(result) -> str:
    """Done or stopped, and the steps run of those asked (the recipe's: the request as sized
    for the device, where an API call left the steps out)."""
    state = "stopped early" if result.cancelled else "done"
    return f"**{state}: {result.steps_done}/{result.recipe.params['steps']} steps.**"


def build_reconstruct(studio: StudioInterface, run_id: gr.State):
    form = Form(ReconstructRequest)
    with gr.Row():
        with gr.Column(scale=1):
            form.add(
                "scene",
                gr.File(
                    label="Scene zip: transforms.json (nerfstudio PINHOLE or OPENCV, "
                    "instant-ngp, Blender transforms_*.json), LLFF / mip-NeRF 360 "
                    "poses_bounds.npy + images/, or COLMAP sparse/0 (.bin or .txt) + images/; "
                    "fisheye refused (empty: the built-in example)",
                    type="filepath",
                    file_types=[".zip"],
                ),
            )
            form("resolution")
            form("steps")
            with gr.Accordion("Settings", open=False):
                for name in (
                    "grid",
                    "samples",
                    "batch_rays",
                    "background",
                    "space",
                    "preview_every",
                    "seed",
                ):
                    form(name)
            with gr.Row():
                button = gr.Button("Reconstruct", variant="primary")
                stop = gr.Button("Stop (keeps the fit so far)", variant="stop")
        with gr.Column(scale=1):
            outputs = {
                "run_id": run_id,
                "status": gr.Markdown(label="Status"),
                "preview": gr.Image(
                    label="Held-out view: truth | RGB head | decoded latent", elem_classes=PIXELATED
                ),
                "losses": LOSSES.component("Losses"),
                "metrics": metrics_table("Measured"),
                "scene_file": gr.File(label="Fitted scene (.nerf)", interactive=False),
                "recipe": gr.File(label=RECIPE_LABEL, interactive=False),
            }

    def nerf_reconstruct(values: dict[str, Any], call: Call):
        """Fit a NeRF in Stable Diffusion's latent space to a scene zip (or the built-in
        example); streams progress and previews."""
        request = ReconstructRequest(**{**values, "scene": values["scene"] or EXAMPLE})
        result = yield from stream(studio, "nerf", request, call, LOSSES, progress_bar=True)
        folder = call.folder()
        scene = write_bytes(folder / "scene.nerf", result.scene)
        yield {
            "run_id": "",
            "status": status_line(result),
            "preview": result.preview,
            "losses": LOSSES.frame(result.history),
            "metrics": metrics_rows(result),
            "scene_file": str(scene),
            "recipe": recipe_file(result, folder),
        }

    connect(
        button.click,
        nerf_reconstruct,
        form,
        outputs,
        api_name="nerf_reconstruct",
        gpu_duration=offered("nerf").long_run_gpu_seconds,
    )
    return form, outputs, stop


def build_edit(studio: StudioInterface, run_id: gr.State):
    form = Form(EditRequest)
    with gr.Row():
        with gr.Column(scale=1):
            form.add("scene", scene_input("Fitted scene (.nerf)"))
            form("source", placeholder="e.g. a stone statue")
            form("target", placeholder="e.g. a golden statue")
            form("mode")
            form("steps")
            with gr.Accordion("Settings", open=False):
                for name in (
                    "guidance_scale",
                    "weighting",
                    "lr",
                    "t_min",
                    "t_max",
                    "switch_every",
                    "frames",
                    "preview_every",
                    "seed",
                ):
                    form(name)
            with gr.Row():
                button = gr.Button("Edit", variant="primary")
                stop = gr.Button("Stop (keeps the edit so far)", variant="stop")
        with gr.Column(scale=1):
            outputs = {
                "run_id": run_id,
                "status": gr.Markdown(label="Status"),
                "preview": gr.Image(
                    label="Training view: original | edited", elem_classes=PIXELATED
                ),
                "video": gr.Video(label="Orbit: original | edited"),
                "losses": LOSSES.component("Guidance loss"),
                "metrics": metrics_table("Measured"),
                "scene_file": gr.File(label="Edited scene (.nerf)", interactive=False),
                "recipe": gr.File(label=RECIPE_LABEL, interactive=False),
            }

    def nerf_edit(values: dict[str, Any], call: Call):
        """Edit a fitted scene from a source to a target prompt with Delta Denoising Score;
        streams progress and previews."""
        request = EditRequest(**values)
        result = yield from stream(studio, "nerf", request, call, LOSSES, progress_bar=True)
        folder = call.folder()
        yield {
            "run_id": "",
            "status": status_line(result),
            "preview": result.preview,
            "video": str(write_bytes(folder / "orbit.mp4", result.video)),
            "losses": LOSSES.frame(result.history),
            "metrics": metrics_rows(result),
            "scene_file": str(write_bytes(folder / "edited.nerf", result.scene)),
            "recipe": recipe_file(result, folder),
        }

    connect(
        button.click,
        nerf_edit,
        form,
        outputs,
        api_name="nerf_edit",
        gpu_duration=offered("nerf").long_run_gpu_seconds,
    )
    return form, outputs, stop


def build_render(studio: StudioInterface) -> dict[str, Any]:
    form = Form(RenderRequest)
    with gr.Row():
        with gr.Column(scale=1):
            form.add("scene", scene_input("Scene (.nerf)"))
            form.add("compare", scene_input("Compare with (optional .nerf)"))
            form("decode")
            for name in ("azimuth", "elevation", "distance", "frames", "fps"):
                form(name)
            button = gr.Button("Render", variant="primary")
        with gr.Column(scale=1):
            outputs = {
                "still": gr.Image(label="Still"),
                "video": gr.Video(label="Orbit"),
                "metrics": metrics_table("Measured"),
                "recipe": gr.File(label=RECIPE_LABEL, interactive=False),
            }

    def nerf_render(values: dict[str, Any], call: Call) -> dict[str, Any]:
        """Render a still and an orbit video of a .nerf scene (beside another, optionally)."""
        result = studio.engine("nerf").run(RenderRequest(**values), call.progress)
        folder = call.folder()
        return {
            "still": result.still,
            "video": str(write_bytes(folder / "orbit.mp4", result.video)),
            "metrics": metrics_rows(result),
            "recipe": recipe_file(result, folder),
        }

    connect(
        button.click,
        nerf_render,
        form,
        outputs,
        api_name="nerf_render",
        gpu_duration=offered("nerf").gpu_seconds,
    )
    return form


START_HERE = (
    "**Start here:** leave the scene empty and press **Reconstruct** to fit the built-in "
    "example scene, then describe an edit under **2. Edit**."
)


def build(studio: StudioInterface) -> None:
    intro(INTRO)
    notice = gr.Markdown(visible=False)
    start_here("Reconstruct", START_HERE)
    run_id = gr.State("")
    with gr.Tab("1. Reconstruct"):
        fit_form, fitted, stop_fit = build_reconstruct(studio, run_id)
    with gr.Tab("2. Edit"):
        edit, edited, stop_edit = build_edit(studio, run_id)
    with gr.Tab("3. Render"):
        render = build_render(studio)
    cpu_notice(studio, notice, [fit_form, edit, render], CPU_SLOW, "nerf")
    wire_stop(
        studio,
        "nerf",
        [stop_fit, stop_edit],  # one Stop for both long runs (one runs at a time)
        run_id,
        [fitted["status"], edited["status"]],
        api_name="nerf_stop",
        doc="Stop the running reconstruction or edit after its current step, keeping the result.",
        stopping="Stopping after this step; what was done is kept.",
        idle="Nothing is running.",
    )
    fitted["scene_file"].change(
        lambda path: (path, path),
        fitted["scene_file"],
        [edit.inputs["scene"], render.inputs["scene"]],
        api_visibility="private",
    )
    edited["scene_file"].change(
        lambda path: path,
        edited["scene_file"],
        render.inputs["compare"],
        api_visibility="private",
    )
    # a scene uploaded to Edit is the one to render too, unless Render was given its own
    edit.inputs["scene"].upload(
        lambda path, shown: shown or path,
        [edit.inputs["scene"], render.inputs["scene"]],
        render.inputs["scene"],
        api_visibility="private",
    )
