"""The subject-video engine on tiny models of the real classes (SD-1.5-structured UNet, VAE and
CLIP text encoder, a MotionAdapter, an IP-Adapter folder in h94's layout with its CLIP vision
encoder, CLIP, DINO, Grounding DINO), loaded through the registry and the engine's loaders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from diffusers import AnimateDiffPipeline
from diffusers.models.attention_processor import IPAdapterAttnProcessor2_0
from PIL import Image, ImageDraw

from engines import cli
from engines.device import DeviceSpec
from engines.errors import InputError, ModelUnavailable
from engines.manager import ModelManager
from engines.mp4 import read_mp4
from engines.registry import override_variable
from engines.studio import Studio
from engines.video import Keyframe, SubjectVideoRequest
from engines.video.control import (
    AttentionProbe,
    ControlSettings,
    SpatialCrossAttention,
    SpatialSelfAttention,
    VideoControl,
    controlled_attention,
    self_attention_layers,
)
from engines.video.engine import check_prompt_length
from engines.video.loading import use_ip_adapter
from engines.video.sampler import _reference_pass, encode_reference, sample
from engines.video.subject import load_subject
from engines.video.trajectory import BoxMasks, frame_boxes, unet_grids

PROMPT = "a red toy robot walking on a table"
SIZE, FRAMES = 64, 8  # sampler-level tests; the request itself starts at 256 px
LEFT_TO_RIGHT = [Keyframe(0, 0.0, 0.25, 0.5, 0.75), Keyframe(7, 0.5, 0.25, 1.0, 0.75)]


@pytest.fixture(scope="module")
def subject_png(tmp_path_factory):
    image = Image.new("RGBA", (48, 48), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((8, 8, 40, 40), fill=(220, 40, 40, 255))
    path = tmp_path_factory.mktemp("subject") / "subject.png"
    image.save(path)
    return path


@pytest.fixture(scope="module")
def studio(tiny_video_dirs):
    with pytest.MonkeyPatch.context() as patch:
        for component, folder in tiny_video_dirs.items():
            patch.setenv(override_variable("video", component), str(folder))
        yield Studio(device="cpu")


@pytest.fixture(scope="module")
def engine(studio):
    return studio.engine("video")


@pytest.fixture(scope="module")
def parts(engine):
    return engine.manager.load("video")


@pytest.fixture(scope="module")
def pipe(parts):
    return parts.get("pipeline")


def with_ip(pipe, parts, variant="plain"):
    use_ip_adapter(pipe, parts.get("ip_adapter"), variant, 0.6)
    return pipe


def run_sample(pipe, seed=3, control=None, reference=None, ip_image=None, steps=2):
    return sample(
        pipe,
        PROMPT,
        "",
        FRAMES,
        SIZE,
        SIZE,
        steps,
        7.5,
        torch.Generator("cpu").manual_seed(seed),
        ip_image=ip_image,
        control=control,
        reference=reference,
    )


def make_control(pipe, subject, **settings) -> tuple[VideoControl, object]:
    """Controls over the left-to-right trajectory, all steps, as the engine builds them."""
    full = {
        "reference_steps": (0, 9),
        "ip_mask_steps": (0, 9),
        "token_steps": (0, 9),
        "token_outside_steps": (0, 9),
    }
    if "token_strength" in settings:  # ours: + s inside, - s outside
        strength = settings.pop("token_strength")
        settings.update(token_inside=strength, token_outside=-strength)
    boxes = frame_boxes(LEFT_TO_RIGHT, FRAMES)
    masks = BoxMasks.build(boxes, (SIZE // 8, SIZE // 8), cfg=True)
    tokens = (2, 3)  # "red toy" in PROMPT: position 0 is the start token
    control = VideoControl(ControlSettings(**{**full, **settings}), FRAMES, masks, tokens)
    image, alpha = subject.canvas(SIZE, SIZE)
    reference = encode_reference(pipe, image, seed=3)
    for h, w in unet_grids(SIZE // 8, SIZE // 8):
        pooled = torch.nn.functional.adaptive_avg_pool2d(
            torch.from_numpy(alpha)[None, None], (h, w)
        )
        control.reference_keep[h * w] = pooled.flatten() > 0
    return control, reference


# --- trajectory and masks ------------------------------------------------------------------


def test_keyframes_interpolate_linearly_and_hold_at_the_ends():
    keys = [Keyframe(6, 0.5, 0.5, 0.9, 0.9), Keyframe(2, 0.1, 0.1, 0.5, 0.5)]  # any order
    boxes = frame_boxes(keys, 9)
    assert boxes.shape == (9, 4)
    np.testing.assert_allclose(boxes[0], boxes[2])  # held before the first keyframe
    np.testing.assert_allclose(boxes[4], [0.3, 0.3, 0.7, 0.7])  # halfway
    np.testing.assert_allclose(boxes[8], [0.5, 0.5, 0.9, 0.9])  # held after the last
    assert np.allclose(frame_boxes([keys[0]], 4), [keys[0].box()] * 4)


def test_masks_exist_at_every_unet_resolution_in_the_cfg_batch_layout():
    boxes = frame_boxes(LEFT_TO_RIGHT, FRAMES)
    masks = BoxMasks.build(boxes, (10, 12), cfg=True)
    grids = unet_grids(10, 12)
    assert grids == [(10, 12), (5, 6), (3, 3), (2, 2)]  # stride-2 convs round up
    assert sorted(masks.by_tokens) == sorted(h * w for h, w in grids)
    for h, w in grids:
        grid = masks.grid(h * w)
        assert grid.shape == (2 * FRAMES, h, w)
        assert torch.equal(grid[:FRAMES], grid[FRAMES:])  # uncond half == cond half
        # the covered area is the box's, partial cells partial
        areas = grid.sum((1, 2)) / (h * w)
        assert torch.allclose(areas[:FRAMES], torch.full((FRAMES,), 0.25), atol=1e-6)
    full = masks.grid(120)
    assert full[0, 5, :6].eq(1).all() and full[0, 5, 6:].eq(0).all()  # frame 0: left half
    assert full[FRAMES - 1, 5, 6:].eq(1).all()  # last frame: right half
    assert masks.conditional(120).shape == (FRAMES, 120)
    plain = BoxMasks.build(boxes, (10, 12), cfg=False)
    assert plain.grid(120).shape == (FRAMES, 10, 12)
    soft = BoxMasks.build(boxes, (10, 12), cfg=False, soft_edge=0.3).grid(120)
    assert (soft >= plain.grid(120)).all() and (soft > plain.grid(120)).any()
    assert soft.max() <= 1


# --- loading -------------------------------------------------------------------------------


def test_both_ip_adapters_load_through_load_ip_adapter_on_spatial_layers_only(pipe, parts):
    for variant, projection in (
        ("plus", "IPAdapterPlusImageProjection"),
        ("plain", "ImageProjection"),
    ):
        with_ip(pipe, parts, variant)
        assert type(pipe.unet.encoder_hid_proj.image_projection_layers[0]).__name__ == projection
        ip_layers = [
            n
            for n, p in pipe.unet.attn_processors.items()
            if isinstance(p, IPAdapterAttnProcessor2_0)
        ]
        assert len(ip_layers) == 16 and all("motion_modules" not in n for n in ip_layers)
        assert pipe.image_encoder is parts.get("ip_adapter")["encoder"]
    use_ip_adapter(pipe, None, None, 0.0)
    assert pipe.ip_variant is None and pipe.image_encoder is None
    assert not any(
        isinstance(p, IPAdapterAttnProcessor2_0) for p in pipe.unet.attn_processors.values()
    )


def test_an_ip_adapter_override_may_point_at_the_repos_models_folder(pipe, tiny_video_dirs):
    """ZSS_MODEL_VIDEO_IP_ADAPTER=/path/IP-Adapter/models (the folder holding the SD-1.5 files)
    works as the repo folder does."""
    from engines.parts import LoadContext
    from engines.registry import Registry
    from engines.video.loading import load_ip_encoder

    models = tiny_video_dirs["ip_adapter"] / "models"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(override_variable("video", "ip_adapter"), str(models))
        context = LoadContext(Registry.load(), Studio(device="cpu").manager.device, "video")
        ip = load_ip_encoder(context)
    assert ip["resolved"].folder == models and ip["models"] == ""
    for variant in ("plus", "plain"):
        use_ip_adapter(pipe, ip, variant, 0.6)
        assert pipe.ip_variant == variant and pipe.image_encoder is ip["encoder"]
    use_ip_adapter(pipe, None, None, 0.0)


def test_a_missing_or_incomplete_checkpoint_is_model_unavailable(tmp_path, tiny_video_dirs):
    from safetensors.torch import load_file, save_file

    from engines.parts import LoadContext
    from engines.registry import Registry
    from engines.video.loading import load_ip_encoder, load_pipeline

    broken = tmp_path / "motion"
    broken.mkdir()
    (broken / "config.json").write_text(
        (tiny_video_dirs["motion_adapter"] / "config.json").read_text()
    )
    weights = load_file(tiny_video_dirs["motion_adapter"] / "diffusion_pytorch_model.safetensors")
    weights.pop(next(iter(weights)))
    save_file(weights, broken / "diffusion_pytorch_model.safetensors")
    with pytest.MonkeyPatch.context() as patch:
        for component, folder in tiny_video_dirs.items():
            patch.setenv(override_variable("video", component), str(folder))
        patch.setenv(override_variable("video", "motion_adapter"), str(broken))
        context = LoadContext(Registry.load(), Studio(device="cpu").manager.device, "video")
        with pytest.raises(ModelUnavailable, match="video.motion_adapter.*missing"):
            load_pipeline(context)
        patch.setenv(override_variable("video", "ip_adapter"), str(tmp_path))
        with pytest.raises(ModelUnavailable, match="VIDEO_IP_ADAPTER"):
            load_ip_encoder(context)


# --- the controls --------------------------------------------------------------------------


def test_all_controls_off_equals_the_stock_animatediff_pipeline_bit_for_bit(
    engine, pipe, parts, subject_png
):
    subject = load_subject(subject_png)
    with_ip(pipe, parts)
    stock = AnimateDiffPipeline(**pipe.components)
    stock.set_progress_bar_config(disable=True)
    kwargs = dict(
        num_frames=FRAMES, height=SIZE, width=SIZE, num_inference_steps=2, output_type="np"
    )
    expected = stock(
        PROMPT,
        ip_adapter_image=subject.cutout(),
        generator=torch.Generator().manual_seed(3),
        **kwargs,
    ).frames[0]
    assert np.array_equal(run_sample(pipe, ip_image=subject.cutout()), expected)
    # the engine, with a subject and boxes but `control: none`, is the stock pipeline too
    request = SubjectVideoRequest(
        prompt=PROMPT,
        subject=str(subject_png),
        subject_phrase="toy robot",
        keyframes=LEFT_TO_RIGHT,
        frames=FRAMES,
        width=256,
        height=256,
        steps=1,
        seed=3,
        metrics=False,
        control="none",
    )
    result = engine.run(request)
    assert result.metrics["controls"] == "none"
    expected = stock(
        PROMPT,
        ip_adapter_image=subject.cutout(),
        generator=torch.Generator().manual_seed(3),
        **{**kwargs, "height": 256, "width": 256, "num_inference_steps": 1},
    ).frames[0]
    assert np.array_equal(result.frames, (expected * 255).round().astype(np.uint8))


def test_each_control_alone_changes_the_video(pipe, parts, subject_png):
    subject = load_subject(subject_png)
    with_ip(pipe, parts)
    plain = run_sample(pipe, ip_image=subject.cutout())
    for settings in (
        {"reference_strength": 1.0},
        {"ip_mask_strength": 1.0},
        {"token_strength": 2.0},
    ):
        control, reference = make_control(pipe, subject, **settings)
        with controlled_attention(pipe.unet):
            changed = run_sample(
                pipe, control=control, reference=reference, ip_image=subject.cutout()
            )
        assert not np.allclose(changed, plain, atol=1e-4), settings
    # installed but outside every step range, the wrappers call the stock processors exactly
    control, reference = make_control(
        pipe,
        subject,
        reference_strength=1.0,
        token_strength=2.0,
        ip_mask_strength=1.0,
        reference_steps=(5, 9),
        ip_mask_steps=(5, 9),
        token_steps=(5, 9),
        token_outside_steps=(5, 9),
    )
    with controlled_attention(pipe.unet):
        idle = run_sample(pipe, control=control, reference=reference, ip_image=subject.cutout())
    assert np.array_equal(idle, plain)


def test_recorded_attention_mass_inside_the_box_rises_with_each_control(pipe, parts, subject_png):
    subject = load_subject(subject_png)
    with_ip(pipe, parts)
    shares = {}
    for name, settings in {
        # reference without mask
        "off": {"reference_strength": 1.0, "reference_lambda": 1.0, "reference_lambda_early": 1.0},
        "on": {
            "reference_strength": 1.0,
            "reference_lambda": 0.3,
            "reference_lambda_early": 0.3,
            "token_strength": 3.0,
        },
    }.items():
        control, reference = make_control(pipe, subject, **settings)
        control.probe = AttentionProbe(steps=(0,))
        with controlled_attention(pipe.unet):
            run_sample(
                pipe, control=control, reference=reference, ip_image=subject.cutout(), steps=1
            )
        shares[name] = control.probe
    off, on = shares["off"], shares["on"]
    assert set(off.token_inside) == set(on.token_inside) and len(on.token_inside) == 16
    assert set(off.reference_inside) == set(on.reference_inside) and len(on.reference_inside) == 16
    for table in ("token_inside", "reference_inside"):
        before, after = getattr(off, table), getattr(on, table)
        for layer in before:
            if layer.startswith("mid_block"):  # a 1x1 grid at 64 px: the share is its coverage
                assert after[layer] == pytest.approx(before[layer], abs=1e-5)
            else:
                assert after[layer] > before[layer], (table, layer, before, after)
        assert np.mean(list(after.values())) > np.mean(list(before.values())) + 0.05


def test_the_reference_pass_stops_at_its_last_self_attention_layer_with_the_same_features(pipe):
    """Nothing after the last recording layer is read, so the pass ends there (cost)."""
    use_ip_adapter(pipe, None, None, 0.0)
    image = Image.new("RGB", (64, 64), (127, 127, 127))
    ImageDraw.Draw(image).ellipse((16, 16, 48, 48), fill=(220, 40, 40))
    reference = encode_reference(pipe, image, seed=0)
    embeds = pipe.encode_prompt("a red ball", "cpu", 1, False)[0]
    pipe.scheduler.set_timesteps(4)
    t = pipe.scheduler.timesteps[1]
    control = VideoControl(ControlSettings(reference_strength=1.0, reference_steps=(0, 4)), 8)
    outputs = []
    hook = pipe.unet.conv_out.register_forward_hook(lambda *_: outputs.append(1))
    try:
        with controlled_attention(pipe.unet):
            _reference_pass(pipe.unet, pipe.scheduler, reference, t, embeds, None, control)
            full = dict(control.reference)
            assert outputs == [1]  # reference_layers 0: the whole UNet
            control.reference_layers = self_attention_layers(pipe.unet)
            _reference_pass(pipe.unet, pipe.scheduler, reference, t, embeds, None, control)
    finally:
        hook.remove()
    assert outputs == [1]  # stopped before the UNet's output
    assert len(full) == control.reference_layers == 16  # SD 1.5's: 6 down, 1 mid, 9 up
    assert full.keys() == control.reference.keys()
    assert all(torch.equal(full[name], control.reference[name]) for name in full)
    assert not control.recording


def test_the_motion_modules_temporal_attention_is_left_untouched(pipe, parts, subject_png):
    subject = load_subject(subject_png)
    with_ip(pipe, parts)
    before = dict(pipe.unet.attn_processors)
    seen: dict[str, set[str]] = {"motion": set(), "spatial": set()}

    def spy(module, args, kwargs):
        seen["motion" if module.is_motion else "spatial"].update(kwargs)

    hooks = []
    for name, module in pipe.unet.named_modules():
        if name.endswith((".attn1", ".attn2")):
            module.is_motion = "motion_modules" in name
            hooks.append(module.register_forward_pre_hook(spy, with_kwargs=True))
    try:
        with controlled_attention(pipe.unet) as wrapped:
            during = pipe.unet.attn_processors
            control, reference = make_control(
                pipe, subject, reference_strength=1.0, token_strength=1.0
            )
            run_sample(
                pipe, control=control, reference=reference, ip_image=subject.cutout(), steps=1
            )
    finally:
        for hook in hooks:
            hook.remove()
    motion = [n for n in before if "motion_modules" in n]
    assert len(motion) == 42 and len(wrapped) == 32
    assert all(during[n] is before[n] for n in motion)  # the very same processor objects
    assert all(
        isinstance(during[n], (SpatialSelfAttention, SpatialCrossAttention))
        for n in before
        if n not in motion
    )
    assert "video_control" in seen["spatial"] and "video_control" not in seen["motion"]
    assert all(pipe.unet.attn_processors[n] is p for n, p in before.items())  # restored


# --- the engine end to end -----------------------------------------------------------------


def test_cli_writes_a_playable_mp4_and_the_recipe_reruns_it(studio, subject_png, tmp_path, capsys):
    out = tmp_path / "first"
    args = ["--device", "cpu", "video", "--subject", str(subject_png), "--prompt", PROMPT]
    args += [
        "--subject-phrase",
        "toy robot",
        "--box",
        "0:0.05,0.3,0.45,0.9",
        "--box",
        "7:0.55,0.3,0.95,0.9",
    ]
    args += ["--frames", "8", "--width", "256", "--height", "256", "--steps", "1", "-o", str(out)]
    assert cli.main(args) == 0
    written = {p.name for p in out.iterdir()}
    # the layout of every saved result, with the subject image under inputs/
    assert written == {
        "video.mp4",
        "video-boxes.mp4",
        "frames.png",
        "metrics.json",
        "recipe.json",
        "inputs",
    }
    frames, meta = read_mp4(out / "video.mp4")
    assert frames.shape == (8, 256, 256, 3) and meta["codec"] == "h264"
    assert meta["pix_fmt"].startswith("yuv420p") and meta["fps"] == 8
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["controls"] == "reference, ip_mask, token, token_outside"
    for name in ("clip_t", "clip_i", "dino_i", "clip_i_box", "temporal_consistency"):
        assert -1 <= metrics[name] <= 1, name
    assert 0 <= metrics["box_mIoU"] <= 1 and 0 <= metrics["box_detected_frames"] <= 1
    recipe = json.loads((out / "recipe.json").read_text())
    assert recipe["engine"] == "video" and recipe["params"]["keyframes"][1] == [
        7,
        0.55,
        0.3,
        0.95,
        0.9,
    ]
    assert set(recipe["models"]) == {
        "sd15",
        "motion_adapter",
        "ip_adapter",
        "clip",
        "dino",
        "detector",
    }

    again = tmp_path / "again"
    assert cli.main(["--device", "cpu", "run", str(out / "recipe.json"), "-o", str(again)]) == 0
    assert np.array_equal(read_mp4(again / "video.mp4")[0], frames)
    boxed, _ = read_mp4(out / "video-boxes.mp4")
    assert boxed.shape == frames.shape and not np.array_equal(boxed, frames)


@pytest.mark.parametrize(
    ("preset", "controls"),
    [
        ("peekaboo", "ip_mask, partition, temporal"),
        ("trailblazer", "ip_mask, token, token_outside, temporal"),
    ],
)
def test_a_presets_recipe_reruns_to_the_same_frames(engine, subject_png, preset, controls):
    request = SubjectVideoRequest(
        prompt=PROMPT,
        subject=str(subject_png),
        subject_phrase="toy robot",
        keyframes=[(0, -0.2, 0.3, 0.45, 0.9), (7, 0.55, 0.3, 0.95, 0.9)],  # starts off-frame
        control=preset,
        frames=FRAMES,
        width=256,
        height=256,
        steps=2,
        seed=5,
        metrics=False,
    )
    first = engine.run(request)
    assert first.metrics["controls"] == controls and first.metrics["control"] == preset
    assert first.notes == [
        "The box at frame 0 (-0.2, 0.3, 0.45, 0.9) reaches outside the frame; clipped to "
        "(0, 0.3, 0.45, 0.9)."
    ]
    np.testing.assert_allclose(first.boxes[0], [0, 0.3, 0.45, 0.9])
    again = engine.run(SubjectVideoRequest(**first.recipe.params))
    assert np.array_equal(again.frames, first.frames)
    plain = engine.run(SubjectVideoRequest(**{**first.recipe.params, "control": "none"}))
    assert not np.array_equal(plain.frames, first.frames)


def test_without_subject_or_boxes_it_is_plain_animatediff_text_to_video(engine):
    result = engine.run(
        SubjectVideoRequest(prompt=PROMPT, frames=8, width=256, height=256, steps=1)
    )
    assert result.frames.shape == (8, 256, 256, 3) and result.boxes is None
    assert result.metrics["controls"] == "none"
    assert {"clip_t", "temporal_consistency"} <= set(
        result.metrics
    ) and "clip_i" not in result.metrics
    assert set(result.files()) == {"video.mp4", "frames.png"}


def test_without_clip_every_metric_whose_model_is_here_is_still_measured(
    tiny_video_dirs, subject_png, monkeypatch
):
    """CLIP missing leaves out only the CLIP metrics: DINO-I and the box scores come from
    their own models."""
    for component, folder in tiny_video_dirs.items():
        monkeypatch.setenv(override_variable("video", component), str(folder))
    monkeypatch.setenv(override_variable("video", "clip"), str(tiny_video_dirs["clip"]) + "-gone")
    request = SubjectVideoRequest(
        prompt=PROMPT,
        subject=str(subject_png),
        subject_phrase="toy robot",
        keyframes=LEFT_TO_RIGHT,
        frames=8,
        width=256,
        height=256,
        steps=1,
    )
    metrics = Studio(device="cpu").engine("video").run(request).metrics
    for name in ("clip_t", "temporal_consistency", "clip_i", "clip_i_box"):
        assert metrics[name].startswith("not available"), name
        assert "video.clip" in metrics[name]
    assert -1 <= metrics["dino_i"] <= 1
    assert 0 <= metrics["box_mIoU"] <= 1 and 0 <= metrics["box_detected_frames"] <= 1


def test_out_of_memory_releases_the_other_engines_and_the_video_is_made_on_the_second_try(
    studio, monkeypatch
):
    """Engine.run's retry reaches the video engine: out of memory while another engine is
    resident, that one is released and the run goes once more."""
    import engines.video.engine as video_engine

    manager = ModelManager(studio.registry, DeviceSpec("cpu", "float32"), budget_bytes=2**40)
    manager.register("other", lambda context: {"net": torch.nn.Linear(10, 1)})
    engine = video_engine.SubjectVideoEngine(manager)
    manager.load("other")
    real_sample, calls = video_engine.sample, []

    def out_of_memory_once(**kwargs):
        calls.append(manager.is_loaded("other"))
        if len(calls) == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_sample(**kwargs)

    monkeypatch.setattr(video_engine, "sample", out_of_memory_once)
    result = engine.run(
        SubjectVideoRequest(prompt=PROMPT, frames=8, width=256, height=256, steps=1)
    )
    assert calls == [True, False]  # the second try ran with the other engine released
    assert result.frames.shape == (8, 256, 256, 3) and manager.is_loaded("video")


# --- bad input -----------------------------------------------------------------------------

GOOD = dict(prompt=PROMPT, subject_phrase="toy robot", keyframes=[(0, 0.1, 0.1, 0.5, 0.5)])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"keyframes": [(0, 0.5, 0.1, 0.1, 0.5)]}, "inverted or has zero area"),
        ({"keyframes": [(0, 0.1, 0.3, 0.5, 0.3)]}, "inverted or has zero area"),
        ({"keyframes": [(16, 0.1, 0.1, 0.5, 0.5)]}, "outside the video's frames 0 to 15"),
        ({"keyframes": [(-1, 0.1, 0.1, 0.5, 0.5)]}, "outside the video's frames"),
        (
            {"keyframes": [(3, 0.1, 0.1, 0.5, 0.5), (3, 0.2, 0.2, 0.6, 0.6)]},
            "Frame 3 has two boxes",
        ),
        ({"keyframes": [(1.5, 0.1, 0.1, 0.5, 0.5)]}, "whole number"),
        ({"keyframes": [(1, 0.1, 0.1)]}, "a frame number and a box"),
        ({"frames": 40}, "frames is 40; it must be 8 to 32"),
        ({"width": 200}, "width is 200; it must be 256 to 512 px"),
        ({"height": 260}, "not a multiple of 8"),
        ({"steps": 0}, "steps is 0; it must be 1 to 100"),
        ({"reference_strength": 4.0}, "reference strength is 4; it must be 0 to 3"),
        ({"token_strength": -1.0}, "subject-token strength is -1"),
        ({"ip_mask_strength": 1.5}, "IP-Adapter mask strength is 1.5"),
        ({"reference_lambda": 1.5}, "lambda_M \\(late\\) is 1.5; it must be 0 to 1"),
        ({"reference_lambda_early": 0.5, "reference_lambda": 0.2}, "softens later"),
        ({"control": "freetraj"}, "choose one of ours, peekaboo, trailblazer, direct-a-video"),
        ({"keyframes": [(0, 1.1, 0.1, 1.5, 0.5)]}, "wholly outside the frame"),
        ({"token_start": 0.8, "token_end": 0.2}, "starts at 0.8 after it ends at 0.2"),
        ({"prompt": "  "}, "The prompt is empty"),
        ({"subject_phrase": ""}, "Boxes need a subject phrase"),
        ({"subject_phrase": "a horse"}, "'a horse' is not in the prompt"),
        ({"subject_mask": "mask.png"}, "mask was given without a subject image"),
    ],
)
def test_bad_requests_are_refused_in_one_line(change, message):
    with pytest.raises(InputError, match=message) as caught:
        SubjectVideoRequest(**{**GOOD, **change}).validate()
    assert "\n" not in str(caught.value)


def test_bad_subject_files_and_long_prompts_are_refused(tmp_path, monkeypatch, clip_tokenizer_dir):
    from transformers import CLIPTokenizer

    from engines.video import subject as subject_module

    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(InputError, match="is not an image"):
        load_subject(text)
    with pytest.raises(InputError, match="does not exist"):
        load_subject(tmp_path / "none.png")
    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(big)
    monkeypatch.setattr(subject_module, "MAX_BYTES", 100)
    with pytest.raises(InputError, match="MB; at most"):
        load_subject(big)
    monkeypatch.undo()
    empty = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    with pytest.raises(InputError, match="mask \\(or alpha channel\\) is empty"):
        load_subject(empty)
    with pytest.raises(InputError, match="must be the same size"):
        load_subject(big, Image.new("L", (8, 8), 255))
    tokenizer = CLIPTokenizer.from_pretrained(clip_tokenizer_dir)
    check_prompt_length(tokenizer, PROMPT)
    with pytest.raises(
        InputError, match=r"is 8\d tokens; .* reads 77 .* truncated after '\.\.\."
    ) as caught:
        check_prompt_length(tokenizer, "a toy robot " + "walking slowly " * 40)
    assert "\n" not in str(caught.value)


def test_cli_bad_box_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "never"
    args = ["--device", "cpu", "video", "--prompt", PROMPT, "--subject-phrase", "toy robot"]
    assert cli.main(args + ["--box", "0:0.1,0.1,0.5", "-o", str(out)]) == 2
    assert "write it as 'FRAME:X0,Y0,X1,Y1'" in capsys.readouterr().err
    assert cli.main(args + ["--box", "0:0.6,0.1,0.5,0.5", "-o", str(out)]) == 2
    assert "inverted or has zero area" in capsys.readouterr().err
    box = ["--box", "0:0.1,0.1,0.5,0.5"]
    with pytest.raises(SystemExit) as stopped:  # argparse refuses an unknown choice itself
        cli.main(args + box + ["--control", "freetraj", "-o", str(out)])
    assert stopped.value.code == 2
    assert "'peekaboo', 'trailblazer', 'direct-a-video', 'none'" in capsys.readouterr().err
    assert not out.exists()


def test_controls_run_without_cfg_and_on_non_square_frames(pipe, parts, subject_png):
    """guidance_scale <= 1 makes the batch frames-only; a 64x96 video makes every grid
    non-square (8x12, 4x6, 2x3, 1x2): the masks and the reference must follow both."""
    subject = load_subject(subject_png)
    with_ip(pipe, parts)
    boxes = frame_boxes(LEFT_TO_RIGHT, FRAMES)
    settings = ControlSettings(
        reference_strength=1.0,
        reference_steps=(0, 2),
        ip_mask_strength=1.0,
        ip_mask_steps=(0, 2),
        token_inside=2.0,
        token_steps=(0, 2),
        token_outside=-2.0,
        token_outside_steps=(0, 2),
    )
    control = VideoControl(settings, FRAMES, BoxMasks.build(boxes, (8, 12), cfg=False), (2, 3))
    image, _ = subject.canvas(96, 64)
    reference = encode_reference(pipe, image, seed=0)

    def generate(control=None, reference=None):
        return sample(
            pipe,
            PROMPT,
            "",
            FRAMES,
            64,
            96,
            2,
            1.0,
            torch.Generator().manual_seed(0),
            ip_image=subject.cutout(),
            control=control,
            reference=reference,
        )

    plain = generate()
    with controlled_attention(pipe.unet):
        controlled = generate(control, reference)
    assert controlled.shape == plain.shape == (FRAMES, 64, 96, 3)
    assert np.isfinite(controlled).all() and not np.allclose(controlled, plain, atol=1e-4)
    assert {t.shape[1] for t in control.reference.values()} == {96, 24, 6, 2}


def test_background_removal_cuts_the_subject_out_with_clipseg(engine, parts, tmp_path):
    from engines.video.segment import HIGH, LOW, cut_out

    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 56, 3), np.uint8)).save(photo)
    subject = load_subject(photo)
    assert subject.alpha is None
    segmenter = engine.manager.load("video").get("segmenter")
    cut = cut_out(segmenter, subject, "toy robot")
    model, processor = segmenter["model"], segmenter["processor"]
    inputs = processor(
        text=["toy robot"], images=[Image.open(photo)], return_tensors="pt", padding=True
    )
    with torch.no_grad():
        logits = model(**inputs).logits
        probs = torch.sigmoid(logits.reshape(1, 1, *logits.shape[-2:]))
    probs = torch.nn.functional.interpolate(probs, size=(40, 56), mode="bilinear")[0, 0]
    expected = ((probs - LOW) / (HIGH - LOW)).clamp(0, 1).numpy()
    assert cut.alpha.shape == (40, 56) and np.allclose(cut.alpha, expected, atol=1e-6)
    assert np.array_equal(cut.rgb, subject.rgb)

    request = SubjectVideoRequest(
        prompt=PROMPT,
        subject=str(photo),
        subject_phrase="toy robot",
        remove_background=True,
        frames=8,
        width=256,
        height=256,
        steps=1,
        metrics=False,
    )
    assert "segmenter" in engine.run(request).recipe.models
    with torch.no_grad():
        last = model.decoder.transposed_convolution[-1]
        last.weight.zero_(), last.bias.fill_(-100.0)  # a segmenter that sees nothing anywhere
    try:
        with pytest.raises(InputError, match="found no 'toy robot' in the subject photo"):
            cut_out(segmenter, subject, "toy robot")
    finally:
        engine.manager.release("video")  # the next load reads the checkpoint again


def test_box_scores_count_misses_as_zero_iou_and_measure_centroids_in_frame_fractions():
    from engines.video.metrics import box_scores

    boxes = np.array([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    found = [(0.0, 0.0, 0.5, 0.5), (0.25, 0.5, 0.75, 1.0), None]
    scores = box_scores(found, boxes)
    assert scores["box_mIoU"] == pytest.approx((1.0 + 1 / 3 + 0.0) / 3)
    assert scores["box_centroid_distance"] == pytest.approx((0.0 + 0.25) / 2)
    assert scores["box_detected_frames"] == pytest.approx(2 / 3)
    assert box_scores([None], boxes[:1])["box_centroid_distance"] is None
