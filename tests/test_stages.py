"""Loading and downloading are stages of a run's progress: a model part that loads, and the
bytes of a download, are reported through the run's own progress callback. Also how progress
and time read elsewhere: the command line's bar in percent, an edit's orbit long enough to
play."""

from __future__ import annotations

import pytest

from engines.layout import LayoutRequest
from engines.registry import override_variable
from engines.stages import StageProgress, download_bar, report, reporting
from engines.studio import Studio


def test_a_stage_is_reported_at_the_last_fraction_and_only_inside_a_run():
    seen = []
    report("loading nothing")  # no run: nobody to tell, no error
    with reporting(lambda fraction, what="": seen.append((fraction, what))) as progress:
        progress(0.4, "step 2/5")
        report("loading detector")
    report("after the run")
    assert seen == [(0.4, "step 2/5"), (0.4, "loading detector")]


def test_download_bytes_become_the_stage():
    seen = []
    with reporting(StageProgress(lambda fraction, what="": seen.append(what))):
        bar = download_bar()(total=3_000_000, unit="B", desc="unet.safetensors", disable=True)
        for _ in range(3):
            bar.update(1_000_000)
        bar.close()
        files = download_bar()(total=2, desc="Fetching 2 files", disable=True)
        files.update(1)
    assert seen == [
        "downloading unet.safetensors: 1.0 of 3.0 MB",
        "downloading unet.safetensors: 2.0 of 3.0 MB",
        "downloading unet.safetensors: 3.0 of 3.0 MB",
        "downloading Fetching 2 files: 1 of 2",
    ]


@pytest.fixture
def layout_studio(tiny_sd15_dir, tmp_path):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(override_variable("layout", "sd15"), str(tiny_sd15_dir))
        patch.setenv(override_variable("layout", "detector"), str(tmp_path / "no-detector"))
        yield Studio(device="cpu")


def test_a_first_layout_run_says_it_is_loading_before_its_steps(layout_studio):
    seen = []
    request = LayoutRequest(prompt="a cat", width=64, height=64, steps=2, score=False)
    layout_studio.engine("layout").run(request, lambda fraction, what="": seen.append(what))
    first_step = next(i for i, what in enumerate(seen) if what.startswith("step"))
    assert "loading layout: sd15" in seen[:first_step]
    seen.clear()  # loaded now: a second run goes straight to its steps
    layout_studio.engine("layout").run(request, lambda fraction, what="": seen.append(what))
    assert not [what for what in seen if what.startswith("loading layout:")]


def test_the_command_line_bar_counts_percent(capsys):
    from engines.commands import progress_bar

    with progress_bar("layout") as progress:
        progress(0.5, "step 10/20")
    shown = capsys.readouterr().err
    assert "50%" in shown and "‰" not in shown and "/s" not in shown


def test_an_edit_orbit_of_a_few_frames_plays_for_seconds(tmp_path):
    """A player shows a clip under a second as 0:00 / 0:00."""
    import imageio_ffmpeg
    import numpy as np

    from engines.mp4 import mp4_bytes
    from engines.nerf.engine import orbit_fps

    frames = [np.full((32, 64, 3), 60 * i, np.uint8) for i in range(4)]
    path = tmp_path / "orbit.mp4"
    path.write_bytes(mp4_bytes(frames, orbit_fps(len(frames))))
    count, seconds = imageio_ffmpeg.count_frames_and_secs(str(path))
    assert count == 4 and seconds >= 2
    assert orbit_fps(24) == 8 and orbit_fps(240) == 24
