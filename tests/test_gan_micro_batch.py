"""Micro-batches in GAN adaptation (engines/gan/micro_batch.py, Adaptation.step): the batch's
update is the same whether it runs at once or a few samples at a time, for SVL (whose losses
compare the samples of a batch) and NADA; how the engine chooses the micro-batch; and that the
low-memory flag reaches it."""

from __future__ import annotations

import copy

import pytest
import torch
from tiny_gan import save_tiny_open_clip, tiny_generator

from engines.clip_guide import ClipGuide
from engines.gan.adapt import Adaptation
from engines.gan.engine import GanAdaptEngine
from engines.gan.micro_batch import (
    HEADROOM,
    bytes_per_sample,
    choose_micro_batch,
    micro_batches,
)
from engines.gan.requests import AdaptRequest
from engines.low_memory import LowMemory, describe_line

pytestmark = pytest.mark.usefixtures("one_thread")

GB = 2**30


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return [
        ClipGuide.load(save_tiny_open_clip(tmp_path_factory.mktemp(f"clip{i}"), seed=i), "cpu")
        for i in range(2)
    ]


def adapted(clips, micro: int | None, **overrides) -> tuple[Adaptation, list]:
    request = AdaptRequest(
        **{
            "method": "svl",
            "source": "photo",
            "target": "pencil sketch",
            "iterations": 3,
            "batch": 4,
            "preview_every": 1000,
            "stage1_iterations": 20,
            **overrides,
        }
    )
    generator = tiny_generator(32, seed=1)
    adaptation = Adaptation(generator, generator.mean_latent(64), clips, request, None, micro)
    # At the start the copy's images equal the source's, so the image directions are those of
    # float noise (which differs between autograd's and no_grad's kernels) and the first step
    # is that noise's sign under Adam; move the copy a little so the directions are defined.
    rng = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for parameter in adaptation.parameters:
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=rng))
    list(adaptation.run())
    return adaptation, adaptation.history


def assert_same_training(plain: Adaptation, split: Adaptation) -> None:
    for before, after in zip(plain.history, split.history, strict=True):
        assert before.keys() == after.keys()
        scale = abs(before["total"])  # each term to float rounding of the loss it is part of
        for name in before:
            assert after[name] == pytest.approx(before[name], rel=1e-5, abs=1e-6 * scale), name
    for (name, a), (_, b) in zip(
        plain.target.state_dict().items(), split.target.state_dict().items(), strict=True
    ):
        # Adam divides each gradient by its own size, so where a gradient is near zero the
        # rounding of the sums moves its step: within 5% of one step (lr) after three steps
        step = plain.request.lr
        torch.testing.assert_close(b, a, rtol=0, atol=0.05 * step, msg=name)


@pytest.mark.parametrize("micro", [1, 3])  # 3: uneven micro-batches of 2 and 2
def test_svl_in_micro_batches_trains_as_the_whole_batch(clips, micro):
    plain, _ = adapted(clips, None)
    split, _ = adapted(clips, micro)
    assert plain.micro_batch == 4 and split.micro_batch == micro
    assert "ewc" in plain.history[-1] and "relation" in plain.history[-1]
    for a, b in zip(plain.fisher, split.fisher, strict=True):  # EWC's weights too
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6 * float(a.abs().max()))
    assert_same_training(plain, split)
    # and the training moved the generator: the comparison is not of two idle runs
    start = tiny_generator(32, seed=1).state_dict()["convs.0.conv.weight"]
    assert (plain.target.state_dict()["convs.0.conv.weight"] - start).abs().max() > 1e-4


def test_nada_in_micro_batches_trains_as_the_whole_batch(clips):
    plain, _ = adapted(clips, None, method="nada", batch=2)
    split, _ = adapted(clips, 1, method="nada", batch=2)
    assert_same_training(plain, split)


def test_nada_layer_selection_in_micro_batches_picks_and_trains_the_same(clips):
    plain, _ = adapted(clips, None, method="nada", batch=2, layer_k=2)
    split, _ = adapted(clips, 1, method="nada", batch=2, layer_k=2)
    assert plain.layer_counts == split.layer_counts == [2, 2, 2]
    assert_same_training(plain, split)


def test_a_micro_batch_is_never_larger_than_the_batch(clips):
    adaptation, _ = adapted(clips, 16, iterations=1)
    assert adaptation.micro_batch == 4


def test_micro_batches_cover_the_batch_evenly():
    assert micro_batches(4, 4) == [slice(0, 4)]
    assert micro_batches(4, 1) == [slice(i, i + 1) for i in range(4)]
    assert micro_batches(4, 3) == [slice(0, 2), slice(2, 4)]
    assert micro_batches(5, 2) == [slice(0, 2), slice(2, 3), slice(3, 5)]


def test_the_engine_splits_a_batch_only_when_it_would_not_fit():
    per_1024 = bytes_per_sample(1024)
    assert 5.0 * GB < per_1024 < 6.0 * GB  # the fit through the measured peaks
    assert 1.6 * GB < bytes_per_sample(256) < 2.0 * GB
    # on CUDA, from the H200's peaks: 1.8 GB a sample at 1024 px, 0.68 at 256
    assert 1.7 * GB < bytes_per_sample(1024, "cuda") < 1.9 * GB
    assert 0.6 * GB < bytes_per_sample(256, "cuda") < 0.75 * GB
    assert bytes_per_sample(1024, "mps") == per_1024  # elsewhere: the CPU's, the larger
    plenty = int(4 * per_1024 / HEADROOM) + 1
    cuda = "cuda"
    assert choose_micro_batch(4, 1024, plenty, None, False, cuda) == 4
    assert choose_micro_batch(4, 1024, None, None, False, cuda) == 4  # unknown: as asked
    assert choose_micro_batch(4, 1024, 14 * GB, None, False, cuda) == 4  # a 16 GB card
    assert choose_micro_batch(4, 1024, 6 * GB, None, False, cuda) == 2  # an 8 GB card
    assert choose_micro_batch(4, 1024, 1 * GB, None, False, cuda) == 1  # never below one
    assert choose_micro_batch(4, 256, plenty, None, True, cuda) == 1  # --low-memory
    assert choose_micro_batch(4, 1024, 1 * GB, 3, False, cuda) == 3  # asked for: taken
    assert choose_micro_batch(4, 1024, plenty, 9, True, cuda) == 4
    # on other devices the CPU's larger fit: 21 GB free takes 2 of 4 samples at 1024 px
    assert choose_micro_batch(4, 1024, 21 * GB, None, False, "mps") == 2
    assert choose_micro_batch(4, 256, 21 * GB, None, False, "mps") == 4
    # on a CPU one sample at a time, the faster there as well as the smaller
    assert choose_micro_batch(4, 256, plenty, None, False, "cpu") == 1
    assert choose_micro_batch(4, 256, plenty, 4, False, "cpu") == 4


def test_the_low_memory_flag_names_the_gan_lever():
    from engines.device import DeviceSpec

    shown = LowMemory(on=True).describe(DeviceSpec("cpu", "float32"))
    assert shown["engines"]["gan"] == [
        "micro-batches of one sample (gradients added over the batch)"
    ]
    assert "gan: micro-batches of one sample" in describe_line(shown)


def test_the_adapt_result_reports_the_micro_batch_it_used(tmp_path, local_model):
    from tiny_gan import save_tiny_generator

    from engines.manager import ModelManager
    from engines.registry import Registry

    local_model("gan", "cat256", save_tiny_generator(tmp_path / "cat.pt", size=32))
    local_model("gan", "clip", save_tiny_open_clip(tmp_path / "clip"))
    request = dict(
        source="photo",
        target="pencil sketch",
        iterations=2,
        stage1_iterations=5,
        eval_samples=4,
        grid_size=1,
    )
    used = {}
    for low, asked in ((False, None), (False, 3), (True, None)):
        engine = GanAdaptEngine(ModelManager(Registry.load(), "cpu", low_memory=low))
        result = engine.run(AdaptRequest(**copy.deepcopy(request), micro_batch=asked))
        assert all(torch.isfinite(v).all() for v in result.generator_state.values())
        used[low, asked] = result.metrics["micro_batch"]
    # on a CPU one sample at a time unless asked; asked for, taken; --low-memory: one
    assert used == {(False, None): 1, (False, 3): 3, (True, None): 1}
