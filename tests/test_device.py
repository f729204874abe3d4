"""The dtype chosen on CUDA cards of three generations, with PyTorch's CUDA queries mocked: bf16
only where the card does it in hardware, fp16 where bf16 would only be emulated."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from engines.device import choose_device

CARDS = {  # name: compute capability (major, minor)
    "A100 (Ampere)": (8, 0),
    "T4 (Turing)": (7, 5),
    "V100 (Volta)": (7, 0),
}


@pytest.fixture
def card(monkeypatch):
    def install(name: str) -> None:
        major, minor = CARDS[name]
        properties = SimpleNamespace(name=name, major=major, minor=minor)
        monkeypatch.setattr(torch.version, "hip", None)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
        monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: properties)
        # what a real pre-Ampere card answers when asked to make a bf16 tensor: it can (emulated)
        monkeypatch.setattr(torch.cuda, "_check_bf16_tensor_supported", lambda device: True)

    return install


@pytest.mark.parametrize(
    ("name", "dtype"),
    [("A100 (Ampere)", "bfloat16"), ("T4 (Turing)", "float16"), ("V100 (Volta)", "float16")],
)
def test_bf16_only_where_the_card_does_it_natively(card, name, dtype):
    card(name)
    for requested in ("auto", "cuda", "cuda:0"):
        assert choose_device(requested).dtype_name == dtype, requested


def test_emulated_bf16_is_what_the_default_query_would_have_counted(card):
    """The mocked Turing card is one the default is_bf16_supported() says yes to, so the test
    above would fail with it."""
    card("T4 (Turing)")
    assert torch.cuda.is_bf16_supported()
    assert not torch.cuda.is_bf16_supported(including_emulation=False)
