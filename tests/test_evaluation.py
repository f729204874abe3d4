"""`zsstudio eval` end to end on tiny models (loaded through the registry overrides) over 2-4
items per capability (layout, compression, speech, GAN, NeRF editing, subject video): the report's numbers match a recomputation from the items and from the
engines, reruns are resumed, --limit is honoured, plots are valid PNGs, and every typed-in paper
figure carries its source."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_compression import compression_studio, tiny_amused_in, tiny_photo
from tiny_gan import save_tiny_generator, save_tiny_open_clip

from engines.cli import main
from engines.detection import iou
from engines.evaluation import layout as layout_protocol
from engines.evaluation.cli import protocols
from engines.evaluation.papers import FIGURES, MISSING
from engines.evaluation.report import mean
from engines.registry import override_variable

pytestmark = pytest.mark.usefixtures("one_thread")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_eval(*args: str) -> dict:
    output = Path(args[args.index("-o") + 1])
    assert main(["--device", "cpu", "eval", *args, "--no-progress"]) == 0
    return json.loads((output / "report.json").read_text("utf-8"))


def assert_valid_plots(folder: Path, report: dict) -> None:
    assert report["plots"]
    for name in report["plots"]:
        data = (folder / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE)
        with Image.open(folder / name) as picture:
            picture.verify()
        assert f"]({name})" in (folder / "report.md").read_text("utf-8")


def assert_row_is_mean(row: dict, key: str, values: list) -> None:
    expected = mean(values)
    assert (row[key] is None) == (expected is None)
    if expected is not None:
        assert row[key] == pytest.approx(expected, rel=1e-12, abs=1e-12)


# -- the shared parts -----------------------------------------------------------------------


def test_every_typed_in_paper_figure_carries_a_source_and_is_finite():
    assert FIGURES
    for figure in FIGURES:
        assert math.isfinite(figure.value)
        assert figure.setting.strip()
        # a paper's table and page, or a peer's file at a commit
        assert ("Table" in figure.source and "p." in figure.source) or (
            "@" in figure.source and len(figure.source.split("@")[1].split(",")[0]) == 40
        ), figure
    assert set(MISSING) <= set(protocols())


def test_average_precision_on_a_worked_example():
    # two boxes; detections ranked: hit, miss, hit -> P 1, 1/2, 2/3 at R 1/2, 1/2, 1
    assert layout_protocol.average_precision([1, 0, 1], 2) == pytest.approx(0.5 + 0.5 * 2 / 3)
    records = [
        {
            "boxes": [{"phrase": "a cat", "box": [0, 0, 10, 10]}],
            "detections": {"a cat": [[0, 0, 10, 10, 0.9], [20, 20, 30, 30, 0.8]]},
        },
        {
            "boxes": [{"phrase": "a cat", "box": [0, 0, 10, 10]}],
            "detections": {"a cat": [[1, 0, 10, 10, 0.7]]},
        },
    ]
    assert layout_protocol.ap50(records) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_a_bad_limit_is_refused_before_any_model_loads(tmp_path, capsys):
    assert main(["eval", "compression", "--limit", "0", "-o", str(tmp_path / "r")]) == 2
    assert "--limit" in capsys.readouterr().err
    assert main(["eval", "compression", "--codebooks", "7", "-o", str(tmp_path / "r")]) == 2


# -- compression ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compression(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    studio, undo = compression_studio(tiny_amused_in(base), base / "zss-cache")
    photos = tmp_path_factory.mktemp("photos")
    Image.fromarray(tiny_photo(72, 52)).save(photos / "a.png")
    Image.fromarray(tiny_photo(64, 48, seed=2)).save(photos / "b.png")
    yield studio, photos
    undo()


def test_a_moved_data_folder_is_read_back_not_redone(compression, tmp_path):
    """Items know their input files by name and contents, not by where they lie."""
    _, photos = compression
    data = tmp_path / "photos"
    shutil.copytree(photos, data)
    out = tmp_path / "report"
    options = ["--codebooks", "16", "--coders", "fixed", "-o", str(out)]
    assert run_eval("compression", "--data", str(data), *options)["run"]["ran"] == 2
    moved = data.rename(tmp_path / "moved")
    again = run_eval("compression", "--data", str(moved), *options)
    assert again["run"] == {"items": 2, "ran": 0, "reused": 2, "planned": 2}
    (moved / "a.png").write_bytes((moved / "b.png").read_bytes())  # other contents: redone
    assert run_eval("compression", "--data", str(moved), *options)["run"]["ran"] == 1


def test_compression_eval_resumes_honours_limit_and_matches_the_engine(compression, tmp_path):
    studio, photos = compression
    out = tmp_path / "report"
    options = ["compression", "--data", str(photos), "--codebooks", "16", "-o", str(out)]
    first = run_eval(*options, "--limit", "1")
    assert first["run"] == {"items": 1, "ran": 1, "reused": 0, "planned": 4}
    report = run_eval(*options)
    assert report["run"] == {"items": 4, "ran": 3, "reused": 1, "planned": 4}
    assert run_eval(*options)["run"]["ran"] == 0  # everything read back
    assert len(list((out / "items").glob("*.json"))) == 4

    engine = studio.engine("compression")
    for record in report["items"]:
        item, m = record["item"], record["metrics"]
        assert m["bpp"] == 8 * m["file_bytes"] / (m["width"] * m["height"])
        again = engine.compress(
            item["image"], item["codebook_size"], item["coder"], baselines=False
        )
        for key in ("file_bytes", "bpp", "psnr_db", "ms_ssim", "bits_per_token"):
            assert again.metrics[key] == m[key], key
    for row in report["ours"]:
        if row["method"].startswith("ours"):
            coder = row["method"].split(", ")[1].split()[0]
            chosen = [
                r["metrics"]
                for r in report["items"]
                if r["item"]["coder"] == coder and r["item"]["codebook_size"] == row["K"]
            ]
            for key in ("bpp", "psnr_db", "ms_ssim", "bits_per_token"):
                assert_row_is_mean(row, key, [m[key] for m in chosen])
        elif row["method"].endswith("smallest"):
            found = [
                b for r in report["items"] for b in r["baselines"] if b["codec"] == row["method"]
            ]
            assert_row_is_mean(row, "bpp", [b["bpp"] for b in found])
            assert_row_is_mean(row, "psnr_db", [b["psnr_db"] for b in found])
    assert {p["source"] for p in report["papers"]} <= {f.source for f in FIGURES}
    markdown = (out / "report.md").read_text("utf-8")
    for figure in FIGURES:
        if figure.capability == "compression":
            assert figure.source in markdown
    assert_valid_plots(out, report)


# -- layout -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def layout_models(tiny_sd15_dir, tmp_path_factory):
    from tiny_layout import save_tiny_grounding_dino

    detector = save_tiny_grounding_dino(tmp_path_factory.mktemp("tiny-grounding-dino"))
    clip = save_tiny_open_clip(tmp_path_factory.mktemp("tiny-clip"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(override_variable("layout", "sd15"), str(tiny_sd15_dir))
        patch.setenv(override_variable("layout", "detector"), str(detector))
        patch.setenv(override_variable("gan", "clip"), str(clip))
        yield clip


def test_layout_eval_compares_guided_and_unguided_and_matches_a_recomputation(
    layout_models, tmp_path
):
    prompts = {
        "prompts": [
            {
                "id": "cat-dog",
                "prompt": "a cat and a dog",
                "boxes": [["a cat", 0, 0, 0.5, 1], ["a dog", 0.5, 0, 1, 1]],
            },
        ]
    }
    data = tmp_path / "prompts.json"
    data.write_text(json.dumps(prompts), "utf-8")
    out = tmp_path / "report"
    options = ["layout", "--data", str(data), "--layout-size", "64", "--layout-steps", "2"]
    report = run_eval(*options, "-o", str(out))
    assert report["run"]["items"] == 2
    assert {r["item"]["mode"] for r in report["items"]} == {"guided", "unguided"}
    assert {r["item"]["seed"] for r in report["items"]} == {0}

    from engines.detection import iou
    from engines.evaluation.layout import ClipScorer, ap50
    from engines.studio import Studio

    scorer = ClipScorer(Studio(device="cpu"))
    for record in report["items"]:
        for box in record["boxes"]:
            expected = 0.0 if box["detected"] is None else iou(box["box"], box["detected"])
            assert box["iou"] == pytest.approx(expected)
        image = Image.open(next((out / "items").glob(f"{record['item']['id']}-*/image.png")))
        assert scorer(image, record["item"]["prompt"]) == pytest.approx(record["clip_score"])
    for row in report["ours"]:
        mode = "guided" if row["method"].startswith("ours") else "unguided"
        chosen = [r for r in report["items"] if r["item"]["mode"] == mode]
        assert_row_is_mean(row, "mIoU", [b["iou"] for r in chosen for b in r["boxes"]])
        assert_row_is_mean(row, "clip_score", [r["clip_score"] for r in chosen])
        assert row["AP50"] == ap50(chosen)
    assert report["papers_missing"]
    assert_valid_plots(out, report)


def test_the_committed_prompt_set_is_valid_and_varied():
    import argparse

    args = argparse.Namespace(
        data=None, seeds="0", layout_size=512, layout_steps=50, layout_strength=None
    )
    items = layout_protocol.plan(args)  # every request validates (phrases in prompts, boxes)
    prompts = layout_protocol.load_prompts(layout_protocol.PROMPT_SET)
    assert len(items) == 2 * len(prompts) and len(prompts) >= 6
    assert all(2 <= len(p["boxes"]) <= 4 for p in prompts)
    assert len({box[0] for p in prompts for box in p["boxes"]}) >= 10


# -- speech -----------------------------------------------------------------------------------

POCKETSPHINX = Path("/usr/share/pocketsphinx/test/data")


@pytest.fixture(scope="module")
def speech_models():
    if not (POCKETSPHINX / "librivox").is_dir():
        if os.environ.get("ZSS_CI"):
            pytest.fail("ZSS_CI is set but pocketsphinx-testdata is not installed")
        pytest.skip("needs Debian's pocketsphinx-testdata (apt-get install pocketsphinx-testdata)")
    from tiny_speech import tiny_speech_models

    with pytest.MonkeyPatch.context() as patch:
        for component, path in tiny_speech_models().items():
            patch.setenv(override_variable("speech", component), str(path))
        yield


def test_speech_eval_on_real_speech_matches_a_recomputation(speech_models, tmp_path):
    out = tmp_path / "report"
    vc = run_eval("speech", "--speech-tasks", "vc", "-o", str(out))
    assert vc["run"]["items"] == 2
    tts = run_eval("speech", "--speech-tasks", "tts", "--limit", "1", "-o", str(tmp_path / "t"))
    assert tts["run"] == {"items": 1, "ran": 1, "reused": 0, "planned": 5}

    import soundfile as sf

    from engines.speech.audio import load_clip, resample
    from engines.speech.metrics import cosine, speaker_embedding
    from engines.studio import Studio

    engine = Studio(device="cpu").engine("speech")
    with engine.manager.use("speech") as parts:
        speaker = parts.get("speaker")

        def embed(path):
            clip = load_clip(str(path), "clip", 16000, 60.0)
            return speaker_embedding(speaker["model"], speaker["processor"], clip.samples)

        record = vc["items"][0]
        output = next((out / "items").glob(f"{record['item']['id']}-*/vc.wav"))
        # the saved wav is 16-bit: the recomputation agrees to the quantisation
        samples, rate = sf.read(output, dtype="float32")
        heard = speaker_embedding(
            speaker["model"], speaker["processor"], resample(samples, rate, 16000)
        )
        recomputed = cosine(heard, embed(record["item"]["source"]))
        assert recomputed == pytest.approx(record["metrics"]["sim_to_source"], abs=2e-3)
    for report, task in ((vc, "vc"), (tts, "tts")):
        (row,) = report["ours"]
        metrics = [r["metrics"] for r in report["items"]]
        assert_row_is_mean(row, "WER", [m["wer"] for m in metrics])
        assert_row_is_mean(row, "RTF", [m["rtf"] for m in metrics])
        key = "sim_to_target" if task == "vc" else "sim_to_reference"
        assert_row_is_mean(row, "SIM", [m[key] for m in metrics])
    assert_valid_plots(out, vc)


# -- GAN --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gan_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-gan-eval")
    generator = save_tiny_generator(folder / "cat.pt", size=32)
    clip = save_tiny_open_clip(folder / "clip")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(override_variable("gan", "cat256"), str(generator))
        patch.setenv(override_variable("gan", "clip"), str(clip))
        yield


def test_gan_eval_runs_nada_and_svl_on_the_same_seed(gan_models, tmp_path):
    out = tmp_path / "report"
    report = run_eval(
        "gan", "--gan-model", "cat256", "--gan-targets", "pencil sketch",
        "--gan-iterations", "2", "--gan-samples", "4", "--gan-batch", "3",
        "--gan-stage1-iterations", "5", "-o", str(out),
    )  # fmt: skip
    assert report["run"]["items"] == 2
    assert {r["item"]["method"] for r in report["items"]} == {"nada", "svl"}
    for record in report["items"]:
        assert [h["iteration"] for h in record["history"]] == [1, 2]
        assert record["metrics"]["final_loss"] == record["history"][-1]["total"]
    for row in report["ours"]:
        method = "nada" if row["method"] == "StyleGAN-NADA" else "svl"
        metrics = [r["metrics"] for r in report["items"] if r["item"]["method"] == method]
        for key in ("clip_target_score_after", "clip_direction_alignment", "diversity_clip_after"):
            assert_row_is_mean(row, key, [m[key] for m in metrics])
    assert_valid_plots(out, report)


def test_the_tab_curve_of_one_image_is_measured_from_real_files(compression):
    from engines.evaluation.compression import image_curve

    studio, photos = compression
    engine = studio.engine("compression")
    series, png = image_curve(engine, str(photos / "a.png"), codebooks=(16, 64))
    assert png.startswith(PNG_SIGNATURE)
    for point, k in zip(series["ours (fixed coder)"], (16, 64), strict=True):
        result = engine.compress(str(photos / "a.png"), k, "fixed", baselines=False)
        assert point == (result.metrics["bpp"], result.metrics["psnr_db"])
    assert len(series["JPEG"]) == 7 and all(bpp > 0 for bpp, _ in series["JPEG"])


# -- NeRF editing -----------------------------------------------------------------------------

NERF_TINY = [
    "--nerf-resolution", "32", "--nerf-fit-steps", "10", "--nerf-grid", "16",
    "--nerf-samples", "16", "--nerf-batch-rays", "256", "--nerf-edit-steps", "2",
    "--nerf-frames", "4",
]  # fmt: skip


@pytest.fixture(scope="module")
def nerf_edit_set(tmp_path_factory):
    """One edit of the built-in example scene, rendered at 32 px beside the set's file."""
    from engines.nerf.example import write_example

    folder = tmp_path_factory.mktemp("nerf-edits")
    write_example(folder / "scene", 32)
    edit = {"id": "gold", "scene": "scene", "source": "a toy scene", "target": "a golden toy"}
    (folder / "edits.json").write_text(json.dumps({"edits": [edit]}), "utf-8")
    return folder / "edits.json"


@pytest.fixture(scope="module")
def nerf_clip(tiny_sd15_dir, tmp_path_factory):
    clip = save_tiny_open_clip(tmp_path_factory.mktemp("tiny-nerf-clip"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(override_variable("nerf", "sd15"), str(tiny_sd15_dir))
        patch.setenv(override_variable("nerf", "clip"), str(clip))
        yield clip


def test_nerf_eval_edits_one_fit_with_dds_and_sds_and_matches_a_recomputation(
    nerf_clip, nerf_edit_set, tmp_path
):
    from engines.clip_guide import ClipGuide
    from engines.evaluation import nerf as nerf_protocol
    from engines.nerf import EditRequest
    from engines.nerf.engine import edit_metrics

    out = tmp_path / "report"
    options = ["nerf", "--data", str(nerf_edit_set), *NERF_TINY, "-o", str(out)]
    first = run_eval(*options, "--limit", "1")
    assert first["run"] == {"items": 1, "ran": 1, "reused": 0, "planned": 3}
    report = run_eval(*options)
    assert report["run"] == {"items": 3, "ran": 2, "reused": 1, "planned": 3}
    assert len(list((out / "scenes").glob("*.nerf"))) == 1  # fitted once, edited three times
    assert {r["item"]["mode"] for r in report["items"]} == {"dds", "sds", "sds-dreamfusion"}
    fit = report["items"][0]["fit"]
    assert all(r["fit"] == fit for r in report["items"]) and math.isfinite(fit["heldout_psnr_rgb"])
    methods = [row["method"] for row in report["ours"][1:]]
    assert any("CFG 7.5, w(t) = 1)" in m and m.startswith("SDS") for m in methods), methods
    assert any("CFG 100, w(t) = 1 - alpha_bar_t" in m for m in methods), methods
    assert f"{fit['heldout_psnr_rgb']:.2f} dB" in (out / "report.md").read_text("utf-8")

    clip = ClipGuide.load(nerf_clip, "cpu")
    for record in report["items"]:
        item, m = record["item"], record["metrics"]
        assert [h["step"] for h in record["history"]] == [1, 2] and m["steps_done"] == 2
        (folder,) = [
            f for f in (out / "items").glob("*/") if f.name.rsplit("-", 1)[0] == item["id"]
        ]
        views = [
            [np.asarray(Image.open(p)) for p in sorted(folder.glob(f"{kind}-*.png"))]
            for kind in ("original", "edited")
        ]
        assert len(views[0]) == len(views[1]) == m["clip_views"] == 4
        request = EditRequest(scene="x.nerf", source=item["source"], target=item["target"])
        again = edit_metrics(clip, views[0], views[1], request)
        for key in ("clip_direction_similarity", "clip_direction_consistency",
                    "clip_target_score_original", "clip_target_score_edited"):  # fmt: skip
            assert m[key] == pytest.approx(again[key], abs=1e-6), key
        assert (folder / "orbit.mp4").read_bytes()[4:8] == b"ftyp"
    unedited, *edited = report["ours"]
    metrics = [r["metrics"] for r in report["items"]]
    assert_row_is_mean(
        unedited, "clip_target_score", [m["clip_target_score_original"] for m in metrics]
    )
    for row in edited:
        (mode,) = [m for m, label in nerf_protocol.METHODS.items() if label == row["method"]]
        chosen = [r["metrics"] for r in report["items"] if r["item"]["mode"] == mode]
        for key in ("clip_direction_similarity", "clip_direction_consistency"):
            assert_row_is_mean(row, key, [m[key] for m in chosen])
        assert_row_is_mean(
            row, "clip_target_score", [m["clip_target_score_edited"] for m in chosen]
        )
        assert_row_is_mean(row, "edit_s", [m["run_seconds"] for m in chosen])
    assert report["papers_missing"]
    assert_valid_plots(out, report)


def test_nerf_eval_without_clip_still_edits_and_says_what_is_missing(
    nerf_clip, nerf_edit_set, tmp_path, monkeypatch
):
    monkeypatch.setenv(override_variable("nerf", "clip"), str(tmp_path / "no-clip-here"))
    out = tmp_path / "report"
    report = run_eval("nerf", "--data", str(nerf_edit_set), *NERF_TINY, "--nerf-modes", "dds",
                      "-o", str(out))  # fmt: skip
    (record,) = report["items"]
    assert record["metrics"]["steps_done"] == 2
    missing = "not available (model nerf.clip missing)"
    assert record["metrics"]["clip_direction_similarity"] == missing
    assert report["ours"][1]["clip_direction_similarity"] == missing
    assert missing in (out / "report.md").read_text("utf-8")
    assert_valid_plots(out, report)


def test_the_committed_nerf_edit_set_is_valid():
    import argparse

    from engines.evaluation import nerf as nerf_protocol

    parser = argparse.ArgumentParser()
    layout_protocol.add_arguments(parser)
    nerf_protocol.add_arguments(parser)
    args = parser.parse_args([])
    args.data = None
    items = nerf_protocol.plan(args)  # every request validates
    edits = nerf_protocol.load_edits(nerf_protocol.EDIT_SET)
    assert len(items) == len(nerf_protocol.MODES) * len(edits) and len(edits) >= 6
    # fitted at SD 1.5's 512 px on a GPU, at the CPU-sized 256 px here on a CPU
    import torch

    assert items[0]["fit"]["resolution"] == (512 if torch.cuda.is_available() else 256)
    assert len({e["target"] for e in edits}) == len(edits)


# -- subject video ----------------------------------------------------------------------------

VIDEO_TINY = ["--video-size", "256", "--video-frames", "8", "--video-steps", "1"]
ROBOT = Path(__file__).resolve().parents[1] / "assets" / "video" / "toy-robot.png"


@pytest.fixture(scope="module")
def video_models(tiny_video_dirs):
    with pytest.MonkeyPatch.context() as patch:
        for component, folder in tiny_video_dirs.items():
            patch.setenv(override_variable("video", component), str(folder))
        yield tiny_video_dirs


@pytest.fixture(scope="module")
def video_item_set(tmp_path_factory):
    entry = {
        "id": "robot",
        "subject": str(ROBOT),
        "subject_phrase": "toy robot",
        "prompt": "a toy robot walking across a table",
        "keyframes": [[0.0, 0.05, 0.3, 0.45, 0.9], [1.0, 0.55, 0.3, 0.95, 0.9]],
    }
    path = tmp_path_factory.mktemp("video-items") / "items.json"
    path.write_text(json.dumps({"items": [entry]}), "utf-8")
    return path


def test_video_eval_with_and_without_box_control_matches_a_recomputation(
    video_models, video_item_set, tmp_path
):
    from engines.studio import Studio
    from engines.video.metrics import clip_images, clip_text
    from engines.video.requests import Keyframe
    from engines.video.trajectory import frame_boxes

    out = tmp_path / "report"
    modes = ["boxes", "peekaboo", "no_boxes"]
    report = run_eval("video", "--data", str(video_item_set), *VIDEO_TINY,
                      "--video-modes", ",".join(modes), "-o", str(out))  # fmt: skip
    assert report["run"]["items"] == 3
    assert [r["item"]["mode"] for r in report["items"]] == modes
    controls = [r["metrics"]["controls"] for r in report["items"]]
    assert controls == [
        "reference, ip_mask, token, token_outside",
        "ip_mask, partition, temporal",
        "reference",
    ]

    parts = Studio(device="cpu").engine("video").manager.load("video")
    clip = parts.get("clip")
    for record in report["items"]:
        item, m = record["item"], record["metrics"]
        assert item["keyframes"] == [[0, 0.05, 0.3, 0.45, 0.9], [7, 0.55, 0.3, 0.95, 0.9]]
        boxes = frame_boxes([Keyframe(*k) for k in item["keyframes"]], 8)
        np.testing.assert_allclose(record["boxes"], boxes)
        assert len(record["frame_iou"]) == 8
        for found, box, value in zip(record["detections"], boxes, record["frame_iou"], strict=True):
            assert value == (0.0 if found is None else pytest.approx(iou(found, box)))
        assert m["box_mIoU"] == pytest.approx(mean(record["frame_iou"]))  # engine == per frame
        folder = next((out / "items").glob(f"{item['id']}-*/"))
        frames = [Image.open(p).convert("RGB") for p in sorted(folder.glob("frame-*.png"))]
        assert len(frames) == 8
        with torch.no_grad():
            clip_t = float((clip_images(clip, frames) @ clip_text(clip, item["prompt"]).T).mean())
        assert m["clip_t"] == pytest.approx(clip_t, abs=1e-5)
    from engines.evaluation.video import METHODS

    for row in report["ours"]:
        mode = next(m for m in modes if METHODS[m] == row["method"])
        metrics = [r["metrics"] for r in report["items"] if r["item"]["mode"] == mode]
        for key in ("clip_t", "clip_i", "dino_i", "dino_i_box", "temporal_consistency"):
            assert_row_is_mean(row, key, [m[key] for m in metrics])
        assert_row_is_mean(row, "box_mIoU", [m["box_mIoU"] for m in metrics])
        # 8 frames: no video has more than 8 detected, so Peekaboo's figure is not counted
        assert row["box_iou_video"] == "no video with > 8 detected frames"
    assert report["papers_missing"]
    assert_valid_plots(out, report)


def test_video_eval_without_the_detector_reports_box_scores_not_available(
    video_models, video_item_set, tmp_path, monkeypatch
):
    monkeypatch.setenv(override_variable("video", "detector"), str(tmp_path / "no-detector"))
    out = tmp_path / "report"
    report = run_eval("video", "--data", str(video_item_set), *VIDEO_TINY, "--limit", "1",
                      "-o", str(out))  # fmt: skip
    (row,) = report["ours"]
    assert row["box_mIoU"] == "not available (model video.detector missing)"
    assert isinstance(row["clip_i"], float) and report["items"][0]["frame_iou"] is None
    assert "not available (model video.detector missing)" in (out / "report.md").read_text()
    assert_valid_plots(out, report)


def test_the_committed_video_item_set_is_valid_and_its_subjects_ship():
    import argparse

    from engines.evaluation import video as video_protocol

    parser = argparse.ArgumentParser()
    layout_protocol.add_arguments(parser)
    video_protocol.add_arguments(parser)
    args = parser.parse_args([])
    args.data = None
    items = video_protocol.plan(args)  # every request validates (phrases in prompts, boxes)
    entries = video_protocol.load_items(video_protocol.ITEM_SET)
    assert len(items) == 5 * len(entries) and len(entries) >= 6  # 3 peers, ours, plain
    assert len({e["subject"] for e in entries}) >= 3
    assert all(Path(e["subject"]).is_file() for e in entries)
