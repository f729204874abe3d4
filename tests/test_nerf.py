"""NeRF editing: cameras, compositing, fitting, the latent path, DDS, the scene file, every bad
input, and the engine end to end on tiny models (tiny SD-1.5-structured VAE/UNet, tiny CLIP)."""

from __future__ import annotations

import json
import math
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_gan import save_tiny_open_clip

from engines.errors import InputError
from engines.nerf import EditRequest, NerfEditEngine, ReconstructRequest, RenderRequest
from engines.nerf.cameras import Cameras, llff_to_opengl, look_at, to_opengl
from engines.nerf.example import write_example
from engines.nerf.field import FieldConfig
from engines.nerf.fit import FitSettings, Fitter
from engines.nerf.model import LatentNerf, NerfConfig
from engines.nerf.refine import RefinerConfig
from engines.nerf.renderer import composite_values, composite_weights
from engines.nerf.scene_file import SceneHeader, load_scene_bytes, scene_bytes
from engines.nerf.scenes import load_scene
from engines.studio import Studio

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = 32


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    return write_example(tmp_path_factory.mktemp("nerf") / "example", SIZE)


@pytest.fixture(scope="module")
def scene(example):
    return load_scene(example, SIZE)


def tiny_model(scene, grid: int = 24) -> LatentNerf:
    torch.manual_seed(0)
    config = NerfConfig(
        scene.width,
        scene.height,
        samples=32,
        field=FieldConfig(grid, grid, 4, 8, 12, 32),
        refiner=RefinerConfig(channels=8, blocks=1, groups=4, heads=2),
    )
    cameras = Cameras.from_arrays(scene.c2w, scene.intrinsics, scene.width, scene.height)
    return LatentNerf(config, cameras, scene.train, scene.test)


# -- cameras ------------------------------------------------------------------------------------


def reference_directions(rotation, fx, fy, cx, cy, width, height, axes):
    """Per pixel, in NumPy loops: the camera-frame direction in the file's own axes, rotated."""
    out = []
    for row in range(height):
        for col in range(width):
            right, down = (col + 0.5 - cx) / fx, (row + 0.5 - cy) / fy
            local = {
                "opengl": [right, -down, -1.0],
                "opencv": [right, down, 1.0],
                "llff": [down, right, -1.0],  # down, right, back; the camera looks down -back
            }[axes]
            d = rotation @ np.asarray(local)
            out.append(d / np.linalg.norm(d))
    return np.asarray(out)


@pytest.mark.parametrize("axes", ["opengl", "opencv", "llff"])
def test_rays_match_a_numpy_reference(axes):
    rng = np.random.default_rng(1)
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    position = rng.normal(size=3)
    raw = np.concatenate([rotation, position[:, None]], axis=1)[None]
    poses = llff_to_opengl(raw) if axes == "llff" else to_opengl(raw, axes)
    k = (7.0, 6.0, 4.5, 2.5)
    cams = Cameras.from_arrays(poses, [k], 9, 5)
    origins, directions = cams.rays(0)
    expected = reference_directions(rotation, *k, 9, 5, axes)
    np.testing.assert_allclose(directions.numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(origins.numpy(), np.tile(position, (45, 1)), atol=1e-6)


# -- compositing --------------------------------------------------------------------------------


def test_empty_field_gives_zero_opacity_and_the_background():
    t = torch.linspace(0, 2, 16).expand(3, 16)
    comp = composite_weights(torch.zeros(3, 16), torch.full((3, 16), 0.125), t)
    background = torch.tensor([-3.0, 0.5, 2.0, 4.0])  # a latent: never clamped
    out = composite_values(comp, torch.randn(3, 16, 4), background)
    assert torch.equal(comp.accumulation, torch.zeros(3))
    assert torch.allclose(out, background.expand(3, 4))


@pytest.mark.parametrize("samples", [4, 64])
def test_constant_slab_accumulates_one_minus_exp(samples):
    sigma, length = 1.7, 0.9
    deltas = torch.full((1, samples), length / samples)
    t = torch.cumsum(deltas, dim=1)
    comp = composite_weights(torch.full((1, samples), sigma), deltas, t)
    assert comp.accumulation.item() == pytest.approx(1 - math.exp(-sigma * length), abs=1e-6)


# -- fitting ------------------------------------------------------------------------------------


def test_a_tiny_field_fits_the_tiny_example(scene):
    """Held out views (the test split) rise above 18 dB in 150 CPU steps (from about 7.5)."""
    model = tiny_model(scene)
    settings = FitSettings(steps=150, batch_rays=512, lr_grid=0.05, lr_network=3e-3)
    fitter = Fitter(model, torch.from_numpy(scene.images), None, settings)
    before, _ = fitter.heldout()
    fitter.run()
    after, _ = fitter.heldout()
    assert before < 10 and after > 18.0, (before, after)


def test_vae_latents_have_the_expected_shape_and_scale(tiny_sd15_dir, scene):
    from diffusers import AutoencoderKL

    from engines.nerf.views import Decoder

    vae = AutoencoderKL.from_pretrained(tiny_sd15_dir / "vae")
    images = torch.from_numpy(scene.images[:3])
    latents = Decoder(vae).encode(images)
    assert latents.shape == (3, 4, SIZE // 8, SIZE // 8)
    with torch.no_grad():
        posterior = vae.encode(images.permute(0, 3, 1, 2) / 255 * 2 - 1).latent_dist
    expected = posterior.mean * vae.config.scaling_factor
    assert torch.allclose(latents, expected, atol=1e-5)


# -- guidance -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guide(tiny_sd15_dir):
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from engines.nerf.guidance import DiffusionGuide

    return DiffusionGuide(
        UNet2DConditionModel.from_pretrained(tiny_sd15_dir / "unet"),
        DDPMScheduler.from_pretrained(tiny_sd15_dir / "scheduler"),
        CLIPTextModel.from_pretrained(tiny_sd15_dir / "text_encoder"),
        CLIPTokenizer.from_pretrained(tiny_sd15_dir / "tokenizer"),
    )


def test_dds_gradient_is_exactly_zero_for_equal_prompts_and_latents(guide):
    from engines.nerf.guidance import dds_gradient

    z = torch.randn(1, 4, 8, 8)
    same = guide.prompts("a stone statue", "a stone statue")
    grad = dds_gradient(guide, z, z.clone(), same, 500, torch.randn(1, 4, 8, 8))
    assert torch.count_nonzero(grad) == 0
    other = guide.prompts("a stone statue", "a golden statue")
    assert torch.count_nonzero(dds_gradient(guide, z, z, other, 500, torch.randn(1, 4, 8, 8)))


@pytest.mark.parametrize("mode", ["dds", "sds"])
def test_one_guidance_step_changes_the_field_and_lowers_its_objective(guide, scene, mode):
    from engines.nerf.edit import Editor, EditSettings
    from engines.nerf.guidance import guidance_loss

    model = tiny_model(scene)
    prompts = guide.prompts("a toy scene", "a golden toy scene")
    editor = Editor(model, guide, prompts, EditSettings(mode=mode, steps=1, lr_grid=1e-3))
    view = editor.view()
    samples = editor.samples.get_state()  # the same jittered samples before and after
    latent, source = editor.render(view)
    t, noise = editor.draw(latent)
    gradient = editor.gradient(latent, source, t, noise)
    before_params = model.field.appearance_planes.detach().clone()
    loss = guidance_loss(latent, gradient)
    editor.optimizer.zero_grad()
    loss.backward()
    editor.optimizer.step()
    with torch.no_grad():
        editor.samples.set_state(samples)
        after = guidance_loss(model.latent(model.cameras, view, editor.samples), gradient)
    assert not torch.equal(model.field.appearance_planes, before_params)
    assert after.item() < loss.item()


# -- scene file ---------------------------------------------------------------------------------


def test_scene_file_round_trip_is_bit_exact(scene):
    model = tiny_model(scene)
    model.update_occupancy()
    data = scene_bytes(model, SceneHeader({"sd15": {"source": "x"}}, {"views": 44}, []))
    loaded, header = load_scene_bytes(data)
    assert scene_bytes(loaded, header) == data
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    assert torch.equal(loaded.occupancy.cells, model.occupancy.cells)


def test_scene_files_that_are_foreign_truncated_or_newer_are_refused(scene, tmp_path):
    from safetensors.torch import save

    data = scene_bytes(tiny_model(scene), SceneHeader())
    with pytest.raises(InputError, match="truncated"):
        load_scene_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="not a Zero-Shot Studio NeRF scene"):
        load_scene_bytes(save({"w": torch.zeros(2)}))
    with pytest.raises(InputError, match="truncated or empty"):
        load_scene_bytes(b"abc")
    newer = data.replace(b'\\"version\\": 1', b'\\"version\\": 7')
    assert newer != data
    with pytest.raises(InputError, match="version 7.*reads version 1"):
        load_scene_bytes(newer)


# -- bad input ----------------------------------------------------------------------------------


def write_scene(folder: Path, frames: list[dict] | None = None, count: int = 8, **top) -> Path:
    """A small valid transforms.json scene (16 px views on a ring); `frames` replaces its
    frames, `top` adds top-level fields."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for i in range(count):
        Image.new("RGB", (16, 16), (i * 20, 50, 90)).save(folder / f"v{i}.png")
        position = np.array([3 * math.cos(i), 3 * math.sin(i), 1.0])
        pose = look_at(position, np.zeros(3), np.array([0, 0, 1.0]))
        matrix = np.vstack([pose, [0, 0, 0, 1]]).tolist()
        made.append({"file_path": f"v{i}", "transform_matrix": matrix})
    meta = {"camera_angle_x": 0.8, "frames": made if frames is None else frames, **top}
    (folder / "transforms.json").write_text(json.dumps(meta))
    return folder


def good_frames(tmp_path: Path) -> list[dict]:
    return json.loads((write_scene(tmp_path / "good") / "transforms.json").read_text())["frames"]


def test_a_valid_small_scene_reads(tmp_path):
    data = load_scene(write_scene(tmp_path / "s"), 16)
    assert data.images.shape == (8, 16, 16, 3) and data.test == [0] and len(data.train) == 7


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda f: [{"transform_matrix": f[0]["transform_matrix"]}] + f[1:],
            "missing field file_path",
        ),
        (lambda f: [{"file_path": "v0"}] + f[1:], "missing field transform_matrix"),
        (lambda f: [], "frames is empty"),
        (lambda f: [{**f[0], "transform_matrix": [[float("nan")] * 4] * 4}] + f[1:], "non-finite"),
        (lambda f: [{**f[0], "transform_matrix": [[0.0] * 4] * 4}] + f[1:], "singular"),
        (lambda f: [{**f[0], "file_path": "../../etc/passwd"}] + f[1:], "leaves the scene folder"),
        (lambda f: [{**f[0], "file_path": "/etc/hostname"}] + f[1:], "leaves the scene folder"),
        (lambda f: f[:7], "7 views; at least 8"),
        (lambda f: f * 126, "1008 views; at most 1000"),
    ],
)
def test_bad_transforms_are_refused_with_one_line(tmp_path, change, message):
    folder = write_scene(tmp_path / "bad", change(good_frames(tmp_path)))
    with pytest.raises(InputError, match=message) as err:
        load_scene(folder, 16)
    assert "\n" not in str(err.value)


def test_missing_focal_mixed_sizes_huge_images_and_non_images_are_refused(tmp_path):
    from PIL import Image

    good_frames(tmp_path)  # writes the valid scene in tmp_path / "good"
    folder = tmp_path / "good"
    meta = json.loads((folder / "transforms.json").read_text())
    del meta["camera_angle_x"]
    (folder / "transforms.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="missing field fl_x or camera_angle_x"):
        load_scene(folder, 16)
    cases = [
        (lambda p: Image.new("RGB", (24, 16)).save(p), "mixed shapes"),
        (lambda p: Image.new("L", (4100, 4)).save(p), "over 4096 px"),
        (lambda p: Path(p).write_bytes(b"not an image at all"), "is not an image"),
    ]
    for index, (make, message) in enumerate(cases):
        scene_dir = write_scene(tmp_path / f"case{index}")
        make(scene_dir / "v3.png")
        with pytest.raises(InputError, match=message):
            load_scene(scene_dir, 16)


def zipped(tmp_path: Path, name: str, entries: dict[str, bytes], link: str | None = None) -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as archive:
        for entry, data in entries.items():
            archive.writestr(entry, data)
        if link:
            info = zipfile.ZipInfo(link)
            info.external_attr = 0o120777 << 16  # a symbolic link
            archive.writestr(info, "/etc/passwd")
    return path


@pytest.mark.parametrize(
    ("entries", "link", "message"),
    [
        ({"../evil.txt": b"x"}, None, r"leaves the archive \(\.\.\)"),
        ({"/abs/evil.txt": b"x"}, None, "absolute path"),
        ({"scene/transforms.json": b"{}"}, "scene/v0.png", "symbolic link"),
    ],
)
def test_hostile_zips_are_refused_before_extracting(tmp_path, entries, link, message):
    archive = zipped(tmp_path, "scene.zip", entries, link)
    with pytest.raises(InputError, match=message):
        load_scene(archive, 16)
    assert not (tmp_path / "evil.txt").exists()


def test_a_zipped_scene_in_a_folder_reads(tmp_path):
    folder = write_scene(tmp_path / "inner")
    entries = {f"wrapped/{p.name}": p.read_bytes() for p in folder.iterdir()}
    assert len(load_scene(zipped(tmp_path, "ok.zip", entries), 16).images) == 8


def test_llff_scenes_read(tmp_path):
    from PIL import Image

    (tmp_path / "llff" / "images").mkdir(parents=True)
    rows = []
    for i in range(8):
        Image.new("RGB", (20, 16), (30 * i, 80, 40)).save(
            tmp_path / "llff" / "images" / f"{i:03d}.jpg"
        )
        pose_drb = np.array([[0, 1, 0, 0.1 * i], [1, 0, 0, 0], [0, 0, 1, 0]], dtype=float)
        hwf = np.array([[16], [20], [18.0]])
        rows.append(np.concatenate([np.concatenate([pose_drb, hwf], 1).ravel(), [1.0, 5.0]]))
    np.save(tmp_path / "llff" / "poses_bounds.npy", np.stack(rows))
    data = load_scene(tmp_path / "llff", 16)
    assert data.images.shape == (8, 16, 16, 3) or data.images.shape[0] == 8
    assert data.convention == "llff" and (np.abs(data.c2w[:, :, 3]) <= 1).all()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"source": "", "target": "gold"}, "Write a source prompt"),
        ({"source": "stone", "target": "  "}, "Write a target prompt"),
        ({"source": "a stone statue", "target": "a stone statue"}, "the edit would do nothing"),
        ({"source": "a", "target": "b", "t_min": 900, "t_max": 100}, "t_min"),
    ],
)
def test_bad_edit_requests_are_refused(fields, message):
    with pytest.raises(InputError, match=message):
        EditRequest(scene="x.nerf", **fields).validate()


# -- the engine, end to end on tiny models --------------------------------------------------------


@pytest.fixture(scope="module")
def engine(tiny_sd15_dir, tmp_path_factory):
    clip = save_tiny_open_clip(tmp_path_factory.mktemp("clip"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ZSS_MODEL_NERF_SD15", str(tiny_sd15_dir))
        patch.setenv("ZSS_MODEL_NERF_CLIP", str(clip))
        yield Studio(device="cpu").engine("nerf")


TINY_FIT = dict(resolution=SIZE, steps=30, grid=16, samples=24, batch_rays=256, preview_every=10)


def test_reconstruct_edit_render_and_rerun_the_recipe(engine, example, tmp_path):
    assert isinstance(engine, NerfEditEngine)
    fitted = engine.run(ReconstructRequest(scene=str(example), **TINY_FIT))
    assert fitted.steps_done == 30 and not fitted.cancelled
    for name in ("heldout_psnr_rgb", "heldout_ssim_latent", "heldout_psnr_vae_roundtrip"):
        assert math.isfinite(fitted.metrics[name]), name
    assert fitted.recipe.models["sd15"]["revision"].startswith("local:")
    scene_path = tmp_path / "scene.nerf"
    scene_path.write_bytes(fitted.scene)

    edited = engine.run(
        EditRequest(scene=str(scene_path), source="a toy", target="a golden toy", steps=3, frames=4)
    )
    assert edited.video[4:8] == b"ftyp" and edited.steps_done == 3
    assert -1 <= edited.metrics["clip_direction_similarity"] <= 1
    edited_path = tmp_path / "edited.nerf"
    edited_path.write_bytes(edited.scene)
    _, header = load_scene_bytes(edited.scene)
    assert header.edits == [{"source": "a toy", "target": "a golden toy", "mode": "dds"}]

    shown = engine.run(RenderRequest(scene=str(scene_path), compare=str(edited_path), frames=4))
    assert shown.still.shape == (SIZE, 2 * SIZE + 4, 3) and shown.video[4:8] == b"ftyp"
    again = engine.run_recipe(shown.recipe)
    assert again.video == shown.video


def test_stop_keeps_the_fit_so_far(engine, example):
    run = engine.start(ReconstructRequest(scene=str(example), **{**TINY_FIT, "steps": 5000}))
    for update in run:
        if update.stage == "fit" and update.step >= 10:
            assert engine.cancel(run.id)
            break
    result = run.result(timeout=120)
    assert result.cancelled and 10 <= result.steps_done < 5000
    load_scene_bytes(result.scene)


def test_bad_input_fails_before_any_model_loads(tmp_path):
    engine = Studio(device="cpu").engine("nerf")
    with pytest.raises(InputError, match="does not exist"):
        engine.start(ReconstructRequest(scene=str(tmp_path / "nothing.zip")))
    (tmp_path / "old.nerf").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00" + b"{}" * 8)
    with pytest.raises(InputError, match="not a Zero-Shot Studio NeRF scene"):
        engine.start(EditRequest(scene=str(tmp_path / "old.nerf"), source="a", target="b"))
    assert not engine.manager.is_loaded("nerf")


def test_cli_fit_then_render(engine, example, tmp_path, monkeypatch):
    from engines.cli import main

    monkeypatch.setenv("ZSS_MODEL_NERF_SD15", os.environ["ZSS_MODEL_NERF_SD15"])
    out = tmp_path / "cli" / "scene.nerf"
    args = ["--device", "cpu", "nerf-fit", str(example), "-o", str(out), "--resolution", "32"]
    args += ["--steps", "10", "--grid", "16", "--samples", "16", "--batch-rays", "256"]
    assert main(args) == 0
    assert (tmp_path / "cli" / "scene-recipe.json").is_file()
    video = tmp_path / "cli" / "orbit.mp4"
    assert (
        main(
            [
                "--device",
                "cpu",
                "nerf-render",
                str(out),
                "--decode",
                "rgb",
                "--frames",
                "4",
                "-o",
                str(video),
            ]
        )
        == 0
    )
    assert video.read_bytes()[4:8] == b"ftyp"
    recipe = json.loads((tmp_path / "cli" / "orbit-recipe.json").read_text())
    assert recipe["params"]["scene"] == "orbit-inputs/scene-scene.nerf"  # moves with its folder
    assert (tmp_path / "cli" / "orbit-inputs" / "scene-scene.nerf").read_bytes() == out.read_bytes()
    assert main(["--device", "cpu", "nerf-edit", str(out), "--source", "x", "--target", "x"]) == 2


@pytest.mark.parametrize(("background", "value"), [("white", 1.0), ("black", 0.0)])
def test_transparent_pixels_take_the_chosen_background(tmp_path, background, value):
    from PIL import Image

    folder = write_scene(tmp_path / "rgba")
    Image.new("RGBA", (16, 16), (200, 10, 10, 0)).save(folder / "v1.png")
    data = load_scene(folder, 16, background)
    assert data.images.dtype == np.uint8 and np.allclose(data.images[1] / 255, value)


def test_opencv_poses_are_converted(tmp_path):
    folder = write_scene(tmp_path / "gl")
    opengl = load_scene(folder, 16)
    meta = json.loads((folder / "transforms.json").read_text())
    for frame in meta["frames"]:
        matrix = np.asarray(frame["transform_matrix"])
        matrix[:3, 1:3] *= -1  # the same cameras written in OpenCV axes
        frame["transform_matrix"] = matrix.tolist()
    (folder / "transforms.json").write_text(json.dumps({**meta, "convention": "opencv"}))
    opencv = load_scene(folder, 16)
    assert opencv.convention == "opencv"
    np.testing.assert_allclose(opencv.c2w, opengl.c2w, atol=1e-6)
