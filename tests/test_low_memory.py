"""The low-memory levers (engines.low_memory): each leaves a tiny model's output as the plain
path makes it, the studio's --low-memory flag reaches the video pipeline, and the System panel
says which levers are on.

What CPU tests cannot show: model and sequential CPU offload need accelerate's hooks on a CUDA
device; on a CPU they stay off (tested), their effect on memory and output is not tested here.
Memory-efficient attention on CUDA picks other kernels (flash, memory-efficient, cuDNN) than
the CPU's flash kernel tested here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engines import low_memory
from engines.device import DeviceSpec
from engines.low_memory import LowMemory, describe_line, efficient_attention
from engines.registry import override_variable
from engines.studio import Studio
from engines.video import SubjectVideoRequest
from engines.video.loading import set_cpu_offload, set_memory_levers

pytestmark = pytest.mark.usefixtures("one_thread")

CPU = DeviceSpec("cpu", "float32")
CUDA = DeviceSpec("cuda:0", "bfloat16")
FLOAT_TOLERANCE = 1e-5
"""Slicing and kernel choice change the order of float additions, nothing else."""


@pytest.fixture(scope="module")
def studios(tiny_video_dirs):
    with pytest.MonkeyPatch.context() as patch:
        for component, folder in tiny_video_dirs.items():
            patch.setenv(override_variable("video", component), str(folder))
        yield Studio(device="cpu"), Studio(device="cpu", low_memory=True)


@pytest.fixture(scope="module")
def pipe(studios):
    return video_pipeline(studios[0])


def video_pipeline(studio):
    return studio.manager.load(studio.engine("video").name).get("pipeline")


def test_the_levers_each_device_gets(monkeypatch):
    assert LowMemory().levers(CPU) == () and LowMemory().levers(CUDA) == ()
    assert LowMemory(on=True).levers(CPU) == ("vae_slicing", "efficient_attention")
    assert LowMemory().levers(CPU, asked=True) == ("vae_slicing", "efficient_attention")
    assert LowMemory().levers(CPU, offload=True) == ()  # offload needs CUDA
    monkeypatch.setattr(low_memory, "gpu_total_gb", lambda device: 24.0)
    assert LowMemory(on=True).levers(CUDA) == (
        "vae_slicing",
        "efficient_attention",
        "model_offload",
    )
    assert LowMemory().levers(CUDA, offload=True) == ("model_offload",)
    monkeypatch.setattr(low_memory, "gpu_total_gb", lambda device: 6.0)  # the last resort
    assert LowMemory(on=True).levers(CUDA)[-1] == "sequential_offload"


def test_vae_slicing_decodes_the_frames_as_one_batch_does(pipe):
    latents = torch.randn(1, 4, 8, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        plain = pipe.decode_latents(latents, decode_chunk_size=16)
        set_memory_levers(pipe, ("vae_slicing",), torch.device("cpu"))
        try:
            assert pipe.vae.use_slicing
            sliced = pipe.decode_latents(latents, decode_chunk_size=16)
        finally:
            set_memory_levers(pipe, (), torch.device("cpu"))
    assert not pipe.vae.use_slicing
    torch.testing.assert_close(sliced, plain, atol=FLOAT_TOLERANCE, rtol=0)


def test_memory_efficient_attention_predicts_the_same_noise():
    from tiny_models import tiny_sd15_unet

    unet = tiny_sd15_unet()
    generator = torch.Generator().manual_seed(1)
    sample = torch.randn(2, 4, 16, 16, generator=generator)
    text = torch.randn(2, 77, unet.config.cross_attention_dim, generator=generator)
    with torch.no_grad():
        plain = unet(sample, 10, encoder_hidden_states=text).sample
        with efficient_attention(True):
            fused = unet(sample, 10, encoder_hidden_states=text).sample
    torch.testing.assert_close(fused, plain, atol=FLOAT_TOLERANCE, rtol=0)


def test_within_the_lever_the_score_materialising_kernel_is_off():
    assert torch.backends.cuda.math_sdp_enabled()
    with efficient_attention(True):
        assert not torch.backends.cuda.math_sdp_enabled()
        assert torch.backends.cuda.flash_sdp_enabled()
    assert torch.backends.cuda.math_sdp_enabled()
    with efficient_attention(False):
        assert torch.backends.cuda.math_sdp_enabled()


def test_offload_stays_off_on_a_cpu(pipe):
    set_cpu_offload(pipe, "sequential", torch.device("cpu"))
    assert pipe.offloaded is False and pipe.unet.device.type == "cpu"


def video_request(**changes) -> SubjectVideoRequest:
    fields = dict(
        prompt="a toy robot walking",
        subject_phrase="toy robot",
        keyframes=[(0, 0.1, 0.2, 0.5, 0.9), (7, 0.5, 0.2, 0.9, 0.9)],
        frames=8,
        width=256,
        height=256,
        steps=2,
        seed=3,
        metrics=False,
    )
    return SubjectVideoRequest(**{**fields, **changes})


def test_the_studio_flag_and_the_request_both_reach_the_pipeline_with_the_same_video(studios):
    plain_studio, low_studio = studios
    plain = plain_studio.engine("video").run(video_request())
    asked = plain_studio.engine("video").run(video_request(low_memory=True))
    forced = low_studio.engine("video").run(video_request())
    assert plain.metrics["low_memory_levers"] == []
    for result in (asked, forced):
        assert result.metrics["low_memory_levers"] == ["vae_slicing", "efficient_attention"]
        difference = np.abs(result.frames.astype(int) - plain.frames.astype(int))
        assert difference.max() <= 1  # 8-bit rounding of float sums in another order
    assert video_pipeline(low_studio).vae.use_slicing
    # the next plain run on the plain studio takes the lever off again
    plain_studio.engine("video").run(video_request(steps=1))
    assert not video_pipeline(plain_studio).vae.use_slicing


def test_the_system_panel_says_which_levers_are_on(studios):
    from tabs.system import status_rows

    plain_studio, low_studio = studios
    rows = dict(status_rows(low_studio.status()))
    assert rows["low memory"].startswith("on: video: VAE slicing")
    assert "memory-efficient attention" in rows["low memory"]
    assert "CPU offload needs a CUDA device" in rows["low memory"]
    assert dict(status_rows(plain_studio.status()))["low memory"].startswith("off")
    assert describe_line({"on": False}).startswith("off")


def test_one_low_memory_flag_on_the_app_and_the_cli():
    from app import parse_args
    from engines.cli import build_parser
    from engines.commands import studio_from_args

    args = parse_args(["--low-memory", "--device", "cpu"])
    assert studio_from_args(args).manager.low_memory.on
    assert not studio_from_args(parse_args(["--device", "cpu"])).manager.low_memory.on
    cli = build_parser().parse_args(["--low-memory", "models"])
    assert cli.low_memory is True
