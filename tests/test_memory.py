"""Peak memory: one helper, one name (`peak_memory_mb`), one unit, for every engine."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from engines.peak_memory import PEAK_MEMORY, peak_memory, process_peak_rss_mb, reset_peak

ROOT = Path(__file__).resolve().parents[1]


def test_on_a_cpu_the_peak_is_the_process_resident_peak_in_mb():
    before = process_peak_rss_mb()
    block = np.ones(64 * 2**20, dtype=np.uint8)  # 64 MB, touched
    after = peak_memory(torch.device("cpu"))[PEAK_MEMORY]
    assert block.sum() == 64 * 2**20
    assert after >= before and after >= 64
    assert after <= process_peak_rss_mb()  # a peak never goes down


def test_on_cuda_the_peak_is_what_torch_allocated_since_the_reset(monkeypatch):
    reset_on = []
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", reset_on.append)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device: 3 * 2**20 + 2**19)
    reset_peak("cuda:1")
    assert reset_on == [torch.device("cuda:1")]
    assert peak_memory(torch.device("cuda", 1)) == {"peak_memory_mb": 3.5}


def test_no_engine_reports_peak_memory_under_another_name():
    old = re.compile(r"peak_gpu_memory_mb|peak_gpu_gb|peak_rss_gb|max_memory_allocated|ru_maxrss")
    places = [*(ROOT / "engines").rglob("*.py"), *(ROOT / "tabs").rglob("*.py")]
    offenders = [
        str(path.relative_to(ROOT))
        for path in places
        if path.name not in ("memory.py", "peak_memory.py")
        and old.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
