"""Temporary work lives in one folder per process under the cache; a process killed mid-work
(kill -9) leaves nothing in the system's temp folder, and the next start removes what it left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def start(code: str, cache: Path, ready: Path) -> subprocess.Popen:
    env = {**os.environ, "ZSS_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    env.pop("ZSS_SCRATCH_DIR", None)
    env.pop("ZSS_OUTPUT_DIR", None)
    script = textwrap.dedent(code).replace("{ready!r}", repr(str(ready)))
    return subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env)


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, "the process ended before it was ready"
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


def system_temp_entries() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).iterdir() if p.name.startswith("zss-")}


def kill_and_sweep(process: subprocess.Popen, cache: Path) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    left = [p for p in (cache / "scratch").iterdir() if not p.name.startswith(".")]
    assert left, "the killed process's scratch folder should be there until the next start"
    done = subprocess.run(
        [sys.executable, "-c", "from engines import scratch; print(len(scratch.sweep()))"],
        cwd=ROOT,
        env={**os.environ, "ZSS_CACHE": str(cache), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
    assert [p for p in (cache / "scratch").iterdir() if not p.name.startswith(".")] == []


def test_a_kill_during_a_scene_zips_extraction_leaves_nothing_after_the_next_start(tmp_path):
    scene = tmp_path / "scene.zip"
    with zipfile.ZipFile(scene, "w") as archive:
        archive.writestr("transforms.json", "{}")
        archive.writestr("images/a.png", b"\0" * 1000)
    ready = tmp_path / "ready"
    before = system_temp_entries()
    process = start(
        f"""
        import pathlib, time
        from engines.nerf.scenes import scene_folder
        with scene_folder(pathlib.Path({str(scene)!r})) as folder:
            pathlib.Path({{ready!r}}).write_text(str(folder))
            time.sleep(600)
        """,
        tmp_path / "cache",
        ready,
    )
    wait_for(ready, process)
    extracted = Path(ready.read_text())
    assert (tmp_path / "cache" / "scratch") in extracted.parents
    kill_and_sweep(process, tmp_path / "cache")
    assert not extracted.exists()
    assert system_temp_entries() <= before


def test_a_kill_while_copying_inputs_beside_an_output_leaves_no_partial_copy(tmp_path):
    """write_beside copies each input atomically: the copy is there whole or not at all."""
    from engines.files import partial_files

    big = tmp_path / "voice.wav"
    big.write_bytes(os.urandom(1 << 20) * 64)  # 64 MB: the copy takes a while
    out = tmp_path / "out" / "x.recipe.json"
    ready = tmp_path / "ready"
    process = start(
        f"""
        import pathlib, shutil
        from engines import files
        real = shutil.copyfileobj
        def slow(source, target, length=0):
            pathlib.Path({{ready!r}}).write_text("copying")
            while chunk := source.read(1 << 16):
                target.write(chunk)
                import time; time.sleep(0.01)
        shutil.copyfileobj = slow
        from engines.base import Recipe
        recipe = Recipe(engine="speech", params={{"task": "tts", "voice": {str(big)!r}}},
                        inputs={{"voice": {{"name": "voice.wav", "sha256": "0" * 64}}}})
        recipe.save_beside(pathlib.Path({str(out)!r}))
        """,
        tmp_path / "cache",
        ready,
    )
    wait_for(ready, process)
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    copies = list((out.parent).rglob("voice*.wav"))
    assert copies == [] or all(c.stat().st_size == big.stat().st_size for c in copies)
    for copy in copies:
        assert partial_files(copy) == []
    hidden = [p for p in out.parent.rglob(".*.part")]
    assert len(hidden) <= 1  # at most the temp file the kill interrupted, never under its name


def test_the_app_puts_gradios_temp_files_in_its_scratch_folder(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", "import os, app; print(os.environ['GRADIO_TEMP_DIR'])"],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"},
            "ZSS_CACHE": str(tmp_path / "cache"),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert Path(done.stdout.strip()).parent.parent == tmp_path / "cache" / "scratch"


def test_a_live_processs_folder_is_not_swept(tmp_path):
    ready = tmp_path / "ready"
    process = start(
        """
        import pathlib, time
        from engines import scratch
        pathlib.Path({ready!r}).write_text(str(scratch.process_folder()))
        time.sleep(600)
        """,
        tmp_path / "cache",
        ready,
    )
    try:
        wait_for(ready, process)
        folder = Path(ready.read_text())
        done = subprocess.run(
            [sys.executable, "-c", "from engines import scratch; print(len(scratch.sweep()))"],
            cwd=ROOT,
            env={**os.environ, "ZSS_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.stdout.strip() == "0" and folder.is_dir()
    finally:
        process.kill()
        process.wait(timeout=30)


@pytest.mark.parametrize(
    "module", ["engines.recipes", "engines.mp4", "engines.nerf.scenes", "engines.nerf.scene_zip"]
)
def test_no_engine_module_makes_temp_files_in_the_system_temp_folder(module):
    import importlib
    import inspect

    source = inspect.getsource(importlib.import_module(module))
    assert "tempfile.mkdtemp(" not in source and "tempfile.mkstemp(" not in source


def test_a_kill_in_the_middle_of_extracting_a_scene_zip_leaves_nothing_after_the_next_start(
    tmp_path,
):
    """Killed with some entries written and others not: the half-extracted folder is inside
    the process's scratch folder, nothing is in the system's temp folder, and the next start's
    sweep removes it."""
    scene = tmp_path / "scene.zip"
    with zipfile.ZipFile(scene, "w") as archive:
        archive.writestr("scene/transforms.json", "{}")
        for index in range(20):
            archive.writestr(f"scene/images/{index:03d}.png", os.urandom(4096))
    ready = tmp_path / "ready"
    before = system_temp_entries()
    process = start(
        f"""
        import pathlib, time, zipfile
        real = zipfile.ZipFile.extract
        def slow(self, member, path=None, pwd=None):
            written = real(self, member, path, pwd)
            if member.filename.endswith("005.png"):  # a third of the way through
                pathlib.Path({{ready!r}}).write_text(str(path))
                time.sleep(600)
            return written
        zipfile.ZipFile.extract = slow
        from engines.nerf.scenes import load_scene
        load_scene(pathlib.Path({str(scene)!r}), 16)
        """,
        tmp_path / "cache",
        ready,
    )
    wait_for(ready, process)
    extracted = Path(ready.read_text())
    assert (tmp_path / "cache" / "scratch") in extracted.parents
    assert (extracted / "scene" / "images" / "005.png").is_file()
    assert not (extracted / "scene" / "images" / "019.png").exists()  # half-extracted
    kill_and_sweep(process, tmp_path / "cache")
    assert not extracted.exists()
    assert system_temp_entries() <= before
