"""The compression protocol (docs/compression.md, Evaluation): every image of a folder at each
codebook size K with both coders; JPEG, WebP and AVIF at the bytes of our fixed-coder file and
at their smallest; bpp from file bytes, PSNR and MS-SSIM from decoded pixels; the model coder's
bits per token against log2 K."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..hashing import file_sha256
from . import plots
from .papers import figures_for
from .report import Report, mean
from .store import ItemStore

DEFAULT_CODEBOOKS = (16, 64, 256, 1024, 8192)
"""The paper's operating points that aMUSEd's 8192 codes allow (it lists K = 16 ... 16384)."""
CODERS = ("fixed", "model")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm")
SHIPPED_PHOTOS = Path(__file__).resolve().parents[2] / "assets" / "compression"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("compression")
    group.add_argument(
        "--codebooks",
        default=",".join(map(str, DEFAULT_CODEBOOKS)),
        help="codebook sizes K, comma separated (default %(default)s)",
    )
    group.add_argument(
        "--coders", default=",".join(CODERS), help="coders, comma separated (default %(default)s)"
    )


def images_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise InputError(f"--data {folder} is not a folder of images.")
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise InputError(f"--data {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
    return found


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as err:
        raise InputError(
            f"--{what} takes whole numbers separated by commas, not {text!r}."
        ) from err


def plan(args: argparse.Namespace) -> list[dict[str, Any]]:
    from ..compression.codebook import CODEBOOK_SIZES

    codebooks = _ints(args.codebooks, "codebooks")
    unknown = [k for k in codebooks if k not in CODEBOOK_SIZES]
    if unknown or not codebooks:
        raise InputError(f"--codebooks: K must be among {', '.join(map(str, CODEBOOK_SIZES))}.")
    coders = [c.strip() for c in args.coders.split(",") if c.strip()]
    if not coders or any(c not in CODERS for c in coders):
        raise InputError(f"--coders: choose from {', '.join(CODERS)}.")
    items = []
    for path in images_in(Path(args.data) if args.data else SHIPPED_PHOTOS):
        digest = file_sha256(path)[:16]
        for k in codebooks:
            for coder in coders:
                items.append(
                    {
                        "id": f"{path.stem}-k{k}-{coder}",
                        "image": str(path.resolve()),
                        "image_sha256": digest,
                        "codebook_size": k,
                        "coder": coder,
                    }
                )
    return items


KEPT = (
    "codebook", "coder", "width", "height", "file_bytes", "bpp", "psnr_db", "ms_ssim",
    "ms_ssim_kind", "bits_per_token", "fixed_bits_per_token", "token_entropy_bits",
    "model_ideal_bits_per_token", "encode_s", "decode_s",
)  # fmt: skip


def evaluator(studio, args: argparse.Namespace):
    engine = studio.engine("compression")

    def evaluate(item: dict[str, Any], store: ItemStore) -> dict[str, Any]:
        # baselines at our bytes once per image and K: beside the portable (fixed) file
        result = engine.compress(
            item["image"], item["codebook_size"], item["coder"], baselines=item["coder"] == "fixed"
        )
        metrics = {key: result.metrics[key] for key in KEPT if key in result.metrics}
        unreachable = {
            key: value for key, value in result.metrics.items() if key.endswith("_same_bytes")
        }
        return {
            "image": Path(item["image"]).name,
            "metrics": metrics,
            "baselines": [row for row in result.rates if not row["codec"].endswith("(ours)")],
            "unreachable": unreachable,
            "log2_k": math.log2(item["codebook_size"]),
        }

    return evaluate


def _ours_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for coder in CODERS:
        for k in sorted({r["item"]["codebook_size"] for r in records}):
            chosen = [
                r
                for r in records
                if r["item"]["coder"] == coder and r["item"]["codebook_size"] == k
            ]
            if not chosen:
                continue
            m = [r["metrics"] for r in chosen]
            rows.append(
                {
                    "method": f"ours, {coder} coder",
                    "K": k,
                    "log2 K": math.log2(k),
                    "images": len(chosen),
                    "bpp": mean(x["bpp"] for x in m),
                    "psnr_db": mean(x["psnr_db"] for x in m),
                    "ms_ssim": mean(x["ms_ssim"] for x in m),
                    "bits_per_token": mean(x["bits_per_token"] for x in m),
                }
            )
    return rows


def _baseline_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each classical codec at our fixed file's bytes (per K) and at its smallest."""
    rows = []
    fixed = [r for r in records if r["item"]["coder"] == "fixed"]
    from ..compression.baselines import available_codecs

    seen = {b["codec"] for r in fixed for b in r["baselines"]}
    codecs = [f"{n} {mode}" for n in available_codecs() for mode in ("smallest", "same bytes")]
    codecs += sorted(seen - set(codecs))
    for codec in codecs:
        ks = sorted({r["item"]["codebook_size"] for r in fixed})
        for k in ks if codec.endswith("same bytes") else ks[:1]:
            at_k = [r for r in fixed if r["item"]["codebook_size"] == k]
            found = [b for r in at_k for b in r["baselines"] if b["codec"] == codec]
            rows.append(
                {
                    "method": codec,
                    "K": k if codec.endswith("same bytes") else None,
                    "images": len(found),
                    "missing": len(at_k) - len(found),  # could not get down to our bytes
                    "bpp": mean(b["bpp"] for b in found),
                    "psnr_db": mean(b["psnr_db"] for b in found),
                    "ms_ssim": mean(b["ms_ssim"] for b in found),
                }
            )
    return rows


def _curve_plots(ours: list[dict[str, Any]], classical: list[dict[str, Any]]) -> dict[str, bytes]:
    out = {}
    for metric, label in (("psnr_db", "PSNR (dB)"), ("ms_ssim", "MS-SSIM")):
        series: dict[str, list[tuple[float, float]]] = {}
        for row in ours + classical:
            series.setdefault(row["method"], []).append((row["bpp"], row[metric]))
        for figure in figures_for("compression"):
            if figure.metric == metric:
                bpp = next(
                    f.value
                    for f in figures_for("compression")
                    if f.method == figure.method and f.metric == "bpp"
                )
                series[f"{figure.method}, Kodak"] = [(bpp, figure.value)]
        name = "rd_psnr.png" if metric == "psnr_db" else "rd_ms_ssim.png"
        out[name] = plots.curves(series, "bits per pixel", label, f"Rate-distortion: {label}")
    tokens: dict[str, list[tuple[float, float]]] = {"log2 K (uniform code)": []}
    for row in ours:
        tokens.setdefault(row["method"], []).append((row["log2 K"], row["bits_per_token"]))
        tokens["log2 K (uniform code)"].append((row["log2 K"], row["log2 K"]))
    out["bits_per_token.png"] = plots.curves(
        tokens, "log2 K", "payload bits per token", "Bits per token against log2 K"
    )
    return out


def summarise(records: list[dict[str, Any]], args: argparse.Namespace) -> Report:
    ours = _ours_rows(records)
    classical = _baseline_rows(records)
    rows = ours + classical
    notes = [
        "bpp counts every byte of each file (our .zsc header included); PSNR over RGB, 8-bit.",
        "CompressAI's figures are on Kodak: compare them with ours only when --data is Kodak.",
        "Images of 160 px or less on a side get single-scale SSIM in the MS-SSIM column "
        "(items/*.json: ms_ssim_kind).",
    ]
    if any(r["missing"] for r in classical):
        notes.append(
            "`missing`: images where that codec could not get down to our file's bytes at any "
            "quality or downscale (its header alone is larger)."
        )
    return Report(
        capability="compression",
        title="Image compression: rate and distortion",
        protocol=(
            "Each image coded at every codebook size K with both coders (fixed: log2 K bits a "
            "token; model: range coding under the masked transformer); JPEG, WebP and AVIF "
            "(where Pillow has it) coded at no more bytes than our fixed-coder file, searching "
            "quality and a downscale, and at their smallest. Means over images."
        ),
        columns=["method", "K", "images", "missing", "bpp", "psnr_db", "ms_ssim", "bits_per_token"],
        rows=rows,
        records=records,
        settings={
            "data": str(args.data or SHIPPED_PHOTOS),
            "codebooks": args.codebooks,
            "coders": args.coders,
        },
        plots=_curve_plots(ours, classical),
        notes=notes,
    )


TAB_CODEBOOKS = (16, 64, 256, 1024)
"""The tab's curve: K-means for these is quick, and cached after the first image."""


def image_curve(engine, image, codebooks=TAB_CODEBOOKS, coder: str = "fixed", progress=None):
    """The rate-distortion curve of one image: ours at each K (real files, decoded), and JPEG,
    WebP and AVIF at a sweep of qualities at native size. Returns (series, png): series maps
    each codec to its measured (bpp, PSNR) points."""
    from ..compression import CompressRequest
    from ..compression import baselines as classical
    from ..compression.images import load_rgb
    from ..compression.quality import psnr

    image = load_rgb(image)
    pixels = image.shape[0] * image.shape[1]
    series: dict[str, list[tuple[float, float]]] = {f"ours ({coder} coder)": []}
    for index, k in enumerate(codebooks):
        if progress is not None:
            progress(index / len(codebooks), f"Rate-distortion curve: K={k}")
        result = engine.run(CompressRequest(image, k, coder, baselines=False))
        series[f"ours ({coder} coder)"].append((result.metrics["bpp"], result.metrics["psnr_db"]))
    size = (image.shape[1], image.shape[0])
    for codec in classical.available_codecs():
        points = series.setdefault(codec, [])
        for quality in (classical.LOWEST_QUALITY[codec], *classical.QUALITIES[1:]):
            data = classical.encode(image, codec, quality)
            decoded, _ = classical.decode(data, size)
            points.append((8 * len(data) / pixels, psnr(image, decoded)))
    png = plots.curves(
        series, "bits per pixel", "PSNR (dB)", "Rate-distortion of this image", logx=True
    )
    return series, png
