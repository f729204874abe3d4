"""benchmarks/full_size.py on the tiny models, so the full-size check cannot rot: every case
builds, loads through the engines' own loading code, runs one request through Engine.run and
reports its row; a NaN injected into one model's output fails that row and the exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "full_size.py"
sys.path.insert(0, str(ROOT / "benchmarks"))

from full_size import CASES, ENGINES  # noqa: E402 (after the path set-up)

POISONED = "gan-256"
ROW_KEYS = {"case", "engine", "device", "dtype", "load_s", "run_s", "runs", "finite", "estimate"}


def run_script(out: Path, *flags: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ZSS_CACHE": str(out / "cache")}
    command = [sys.executable, str(SCRIPT), "--tiny", "--device", "cpu", "--out", str(out)]
    return subprocess.run(
        [*command, *flags], env=env, capture_output=True, text=True, timeout=1200, check=False
    )


@pytest.fixture(scope="module")
def poisoned_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("full-size")
    done = run_script(out, "--inject-nan", POISONED)
    return done, json.loads((out / "full_size.json").read_text()), (out / "full_size.md")


def test_all_six_engines_run_and_report_a_row_each(poisoned_run):
    done, report, _ = poisoned_run
    rows = {row["case"]: row for row in report["rows"]}
    assert set(rows) == set(CASES) and {row["engine"] for row in rows.values()} == set(ENGINES)
    for case, row in rows.items():
        assert ROW_KEYS <= set(row), (case, row)
        assert "error" not in row, (case, row.get("error"), done.stderr[-2000:])
        assert row["runs"] and all(r["run_s"] >= 0 for r in row["runs"])
        assert row["load_s"] > 0 and row["peak_rss_gb"] > 0 and row["dtype"] == ["float32"]
        assert row["models_checked"] >= 1 and row["model_calls_checked"] >= 1, case
        estimate = row["estimate"]
        assert estimate["total_gb"] >= estimate["weights_gb"] > 0, case
        assert isinstance(estimate["fits_12gb"], bool) and estimate["largest_activation"]
    assert [r["request"] for r in rows["nerf"]["runs"]] == ["reconstruct", "edit"]
    # the estimate is for the GPU default run, whatever the models' size: 512 px (64x64 latent
    # tokens), 8 heads, half precision; batch 2 (CFG), 32 for 16 video frames, 4 for DDS
    scores = {"layout": 0.5, "nerf": 1.0, "video": 8.0}
    for case, gib in scores.items():
        assert rows[case]["estimate"]["largest_activation"] == "UNet self-attention scores"
        assert rows[case]["estimate"]["largest_activation_gb"] == gib, case


def test_an_injected_nan_fails_its_row_and_the_exit_code(poisoned_run):
    done, report, _ = poisoned_run
    assert done.returncode == 1
    rows = {row["case"]: row for row in report["rows"]}
    assert not rows[POISONED]["finite"] and rows[POISONED]["nonfinite_calls"] >= 1
    assert rows[POISONED]["first_nonfinite"]
    assert all(row["finite"] for case, row in rows.items() if case != POISONED)
    assert report["all_finite"] is False


def test_the_markdown_table_has_a_row_per_case(poisoned_run):
    _, report, table = poisoned_run
    lines = table.read_text().splitlines()
    header = next(line for line in lines if line.startswith("| case |"))
    assert "load s" in header and "run s" in header and "peak RSS (GB)" in header
    assert "finite" in header and "GPU estimate" in header
    body = [line for line in lines[lines.index(header) + 2 :] if line.startswith("| ")]
    assert [line.split("|")[1].strip() for line in body] == list(CASES)
    poisoned = next(line for line in body if line.startswith(f"| {POISONED} "))
    assert "| NO |" in poisoned
    assert all("| yes |" in line for line in body if line is not poisoned)


def test_all_finite_outputs_exit_zero(tmp_path):
    done = run_script(tmp_path, "--only", "gan")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "full_size.json").read_text())
    assert [row["case"] for row in report["rows"]] == ["gan-256", "gan-1024"]
    assert report["all_finite"] is True
