"""The layout protocol (docs/layout.md, Evaluation): our own prompt-and-box set
(`layout_prompts.json`), each prompt generated guided and unguided on the same seeds; per box
the IoU of Grounding DINO's best detection of its phrase (mIoU, success@0.5), AP50 over all
boxes of the set, and the CLIP score of each image to its prompt."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..outputs import png_bytes, write_bytes
from . import plots
from .report import Report, mean
from .store import ItemStore

PROMPT_SET = Path(__file__).with_name("layout_prompts.json")
MODES = ("guided", "unguided")
AP_THRESHOLD = 0.05
"""Detections kept for AP50: low, so the precision-recall curve has its tail."""
CLIP_COMPONENT = ("gan", "clip")
"""The CLIP score uses the registry's CLIP ViT-B/32 (the GAN critic): one download serves both."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("layout")
    group.add_argument(
        "--seeds", default="0", help="seeds, comma separated (layout, gan, nerf, video)"
    )
    group.add_argument("--layout-size", type=int, default=512, help="image side in px")
    group.add_argument("--layout-steps", type=int, default=50, help="denoising steps")
    group.add_argument(
        "--layout-strength",
        type=float,
        default=None,
        help="guidance strength (default: the engine's)",
    )


def seeds(args: argparse.Namespace) -> list[int]:
    try:
        found = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError as err:
        raise InputError(
            f"--seeds takes whole numbers separated by commas, not {args.seeds!r}."
        ) from err
    if not found:
        raise InputError("--seeds: give at least one seed.")
    return found


def load_prompts(path: Path) -> list[dict[str, Any]]:
    """The prompt set: {"prompts": [{"id", "prompt", "boxes": [[phrase, x0, y0, x1, y1]]}]}."""
    if path.is_dir():
        path = path / "layout_prompts.json"
    try:
        data = json.loads(path.read_text("utf-8"))
        prompts = data["prompts"]
        for entry in prompts:
            entry["id"], entry["prompt"], entry["boxes"]  # noqa: B018 (presence check)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(
            f"--data {path}: expected a JSON prompt set like {PROMPT_SET.name} ({err})."
        ) from err
    return prompts


def plan(args: argparse.Namespace) -> list[dict[str, Any]]:
    from ..layout import LayoutRequest

    prompts = load_prompts(Path(args.data) if args.data else PROMPT_SET)
    items = []
    for entry in prompts:
        for seed in seeds(args):
            for mode in MODES:
                item = {
                    "id": f"{entry['id']}-s{seed}-{mode}",
                    "prompt_id": entry["id"],
                    "prompt": entry["prompt"],
                    "boxes": entry["boxes"],
                    "seed": seed,
                    "mode": mode,
                    "size": args.layout_size,
                    "steps": args.layout_steps,
                    "strength": args.layout_strength,
                }
                _request(item, LayoutRequest).validate()  # bad boxes are refused up front
                items.append(item)
    return items


def _request(item: dict[str, Any], request_type):
    options = {}
    if item["mode"] == "unguided":
        options["strength"] = 0.0
    elif item["strength"] is not None:
        options["strength"] = item["strength"]
    return request_type(
        prompt=item["prompt"],
        boxes=[list(box) for box in item["boxes"]],
        box_units="normalized",
        width=item["size"],
        height=item["size"],
        steps=item["steps"],
        seed=item["seed"],
        score=True,
        **options,
    )


class ClipScorer:
    """CLIPScore (Hessel et al. 2021, w = 100 as torchmetrics): 100 * max(cos(image, text), 0)."""

    def __init__(self, studio):
        from ..clip_guide import ClipGuide

        resolved = studio.registry.resolve(*CLIP_COMPONENT)
        self.clip = ClipGuide.load(resolved.folder, studio.manager.device.torch_device)
        self.source = resolved.recipe_entry()

    def __call__(self, image, text: str) -> float:
        import numpy as np
        import torch

        pixels = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32))
        tensor = (pixels.permute(2, 0, 1)[None] / 127.5 - 1).to(self.clip.device)
        with torch.no_grad():
            image_feature = self.clip.image_features(tensor)[0]
            text_feature = self.clip.encode_prompts([text])[0]
        return 100.0 * max(float(image_feature @ text_feature), 0.0)


def evaluator(studio, args: argparse.Namespace):
    from ..layout import LayoutRequest

    engine = studio.engine("layout")
    scorer: list[ClipScorer] = []

    def evaluate(item: dict[str, Any], store: ItemStore) -> dict[str, Any]:
        result = engine.run(_request(item, LayoutRequest))
        phrases = [box.phrase for box in result.boxes]
        with engine.manager.use(engine.name) as parts:
            detector = parts.get("detector")
            detections = {
                phrase: [
                    [*d.box, d.score] for d in detector.detect(result.image, phrase, AP_THRESHOLD)
                ]
                for phrase in dict.fromkeys(phrases)
            }
        if not scorer:
            scorer.append(ClipScorer(studio))
        write_bytes(store.artifacts(item) / "image.png", png_bytes(result.image))
        return {
            "boxes": [
                {
                    "phrase": s.phrase,
                    "box": list(s.box),
                    "iou": s.iou,
                    "detected": None if s.detected is None else list(s.detected),
                    "detection_score": s.detection_score,
                }
                for s in result.scores
            ],
            "detections": detections,
            "clip_score": scorer[0](result.image, item["prompt"]),
            "metrics": {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))},
            "clip_model": scorer[0].source,
        }

    return evaluate


def ap50(records: list[dict[str, Any]]) -> float | None:
    """AP at IoU 0.5 over every box of `records`, per phrase then averaged (VOC all-point
    interpolation): each phrase's detections from all images ranked by score; a detection is a
    true positive when it overlaps a not yet matched box of its phrase in its image by >= 0.5."""
    from ..detection import iou

    per_phrase = []
    phrases = sorted({b["phrase"] for r in records for b in r["boxes"]})
    for phrase in phrases:
        truth = {
            i: [b["box"] for b in r["boxes"] if b["phrase"] == phrase]
            for i, r in enumerate(records)
        }
        total = sum(len(v) for v in truth.values())
        ranked = sorted(
            (
                (d[4], i, d[:4])
                for i, r in enumerate(records)
                for d in r["detections"].get(phrase, [])
            ),
            key=lambda x: -x[0],
        )
        matched: set[tuple[int, int]] = set()
        hits = []
        for _, image, box in ranked:
            overlaps = [(iou(box, t), j) for j, t in enumerate(truth[image])]
            best = max(
                ((o, j) for o, j in overlaps if (image, j) not in matched), default=(0.0, -1)
            )
            if best[0] >= 0.5:
                matched.add((image, best[1]))
                hits.append(1)
            else:
                hits.append(0)
        per_phrase.append(average_precision(hits, total))
    return mean(per_phrase)


def average_precision(hits: list[int], total: int) -> float:
    """All-point interpolated AP from ranked hit flags and the number of ground-truth boxes."""
    if total == 0:
        return 0.0
    precisions, recalls, found = [], [], 0
    for rank, hit in enumerate(hits, start=1):
        found += hit
        precisions.append(found / rank)
        recalls.append(found / total)
    ap, previous_recall = 0.0, 0.0
    for index, recall in enumerate(recalls):
        if recall > previous_recall:
            ap += (recall - previous_recall) * max(precisions[index:])
            previous_recall = recall
    return ap


def summarise(records: list[dict[str, Any]], args: argparse.Namespace) -> Report:
    rows, ious = [], {}
    for mode in MODES:
        chosen = [r for r in records if r["item"]["mode"] == mode]
        if not chosen:
            continue
        box_ious = [b["iou"] for r in chosen for b in r["boxes"]]
        ious[mode] = box_ious
        rows.append(
            {
                "method": f"ours, {mode}" if mode == "guided" else "Stable Diffusion, unguided",
                "images": len(chosen),
                "boxes": len(box_ious),
                "mIoU": mean(box_ious),
                "success@0.5": mean([float(i >= 0.5) for i in box_ious]),
                "AP50": ap50(chosen),
                "clip_score": mean(r["clip_score"] for r in chosen),
                "generation_s": mean(r["metrics"].get("generation_s") for r in chosen),
            }
        )
    figures = {
        "iou_histogram.png": plots.histogram(
            ious,
            "IoU of the best detection of each box's phrase",
            "Per-box IoU, guided vs unguided",
        )
    }
    return Report(
        capability="layout",
        title="Layout to image: boxes followed, prompt kept",
        protocol=(
            "Each prompt of the set generated with its boxes guided (ours) and unguided "
            "(guidance strength 0: plain Stable Diffusion) on the same seeds. Grounding DINO finds "
            "each box's phrase: IoU of its best detection (threshold 0.3, as the tab) gives mIoU "
            f"and success@0.5; all detections over {AP_THRESHOLD} give AP50 over the set's boxes. "
            "CLIP score: 100 * cos(image, prompt), CLIP ViT-B/32."
        ),
        columns=[
            "method",
            "images",
            "boxes",
            "mIoU",
            "success@0.5",
            "AP50",
            "clip_score",
            "generation_s",
        ],
        rows=rows,
        records=records,
        settings={
            "data": str(args.data or PROMPT_SET),
            "seeds": args.seeds,
            "size": args.layout_size,
            "steps": args.layout_steps,
            "strength": args.layout_strength,
        },
        plots=figures,
        notes=[
            "Our set is not HRS or DrawBench: the papers' figures on those benchmarks do not "
            "compare number for number.",
            "Generated images are in items/<item>/image.png.",
        ],
    )
