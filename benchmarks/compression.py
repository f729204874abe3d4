"""Compression benchmark: per codebook size K and coder, encode and decode time, bits per token
against the empirical entropy of the tokens (the memoryless bound), bits per pixel from the file
bytes, PSNR and MS-SSIM; and JPEG/WebP on the same images, smallest and at the same bytes.
Prints JSON.

    python benchmarks/compression.py                         # tiny random aMUSEd (plumbing)
    python benchmarks/compression.py --model /m/amused-512   # a local copy of the real weights
    python benchmarks/compression.py --real                  # models.toml (may download)

With tiny random models the rates and qualities say nothing about the method: they time the
code path and check that every file decodes exactly. Times exclude model loading and the
K-means codebooks (one warm-up run per K first).

`kmeans` compares plain and usage-weighted K-means at equal K: the mean squared distance of the
photos' latent vectors to their nearest centroid (per dimension) and the PSNR of the decoded
photos, with code usage counted on all the photos (in-sample) and, for the error, on all but
the photo measured (leave-one-out, the fair test). `--no-kmeans` skips it.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ASSETS = ROOT / "assets" / "compression"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", type=Path, help="a local aMUSEd folder (vqvae/, transformer/...)"
    )
    parser.add_argument("--real", action="store_true", help="use models.toml (may download)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--codebooks", default="16,256,8192", help="comma-separated K values")
    parser.add_argument("--coders", default="fixed,model")
    parser.add_argument("--images", nargs="*", type=Path, help="default: the shipped photos")
    parser.add_argument(
        "--max-side", type=int, default=None, help="downscale images to this (tiny: 128)"
    )
    parser.add_argument("--no-kmeans", action="store_true", help="skip the K-means comparison")
    return parser.parse_args(argv)


def load_images(args) -> dict[str, object]:
    from PIL import Image

    from engines.compression.images import load_rgb

    paths = args.images or sorted(ASSETS.glob("*.png"))
    max_side = args.max_side or (None if (args.model or args.real) else 128)
    images = {}
    for path in paths:
        with Image.open(path) as picture:
            picture = picture.convert("RGB")
            if max_side and max(picture.size) > max_side:
                picture.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            images[path.stem] = load_rgb(picture)
    return images


def point_registry(args, scratch: Path) -> str:
    import os

    from engines import registry

    if args.real:
        return "models.toml"
    if args.model:
        folder = args.model
    else:
        sys.path.insert(0, str(ROOT / "tests"))
        from tiny_compression import save_tiny_amused

        folder = save_tiny_amused(scratch / "tiny-amused")
        registry.CACHE_DIR = scratch / "cache"  # keep tiny codebooks out of the user's cache
    os.environ[registry.override_variable("compression", "amused")] = str(folder)
    return str(folder) if args.model else "tiny random aMUSEd (tests/tiny_compression.py)"


def main(argv=None) -> int:
    args = parse_args(argv)
    codebooks = [int(k) for k in args.codebooks.split(",")]
    coders = args.coders.split(",")
    with tempfile.TemporaryDirectory(prefix="zss-bench-compression-") as scratch:
        model = point_registry(args, Path(scratch))
        from engines.studio import Studio

        studio = Studio(device=args.device)
        engine = studio.engine("compression")
        images = load_images(args)
        runs = []
        for k in codebooks:
            warm_up = next(iter(images.values()))
            engine.compress(warm_up, codebook_size=k, baselines=False)
            for coder in coders:
                for name, image in images.items():
                    runs.append(run_one(engine, name, image, k, coder))
        report = {
            "benchmark": "compression",
            "model": model,
            "device": studio.manager.device.describe(),
            "platform": platform.platform(),
            "images": {name: f"{im.shape[1]}x{im.shape[0]}" for name, im in images.items()},
            "summary": summarise(runs),
            "runs": runs,
        }
        if not args.no_kmeans:
            codec = engine.manager.load("compression").get("codec")
            report["kmeans"] = compare_kmeans(codec, images, codebooks)
    print(json.dumps(report, indent=2, default=str))
    return 0


def compare_kmeans(codec, images: dict, codebooks: list[int]) -> list[dict]:
    """Plain against usage-weighted K-means at each K < N, on the benchmark's photos."""
    import numpy as np

    from engines.compression.codebook import CodeUsage, quantisation_error
    from engines.compression.quality import psnr
    from engines.compression.usage import count_usage

    full = codec.codebooks.get(codec.parts.codebook_size)
    names = list(images)
    latents = {name: codec.vq.latent_vectors(images[name]) for name in names}
    counts = {name: count_usage(codec.vq, full, [images[name]]) for name in names}
    everything = np.concatenate([latents[name] for name in names])
    rows = []
    for k in (k for k in codebooks if k < codec.parts.codebook_size):
        plain = codec.codebooks.get(k)
        usage = codec.codebooks.get(k, CodeUsage(sum(counts.values())))
        held_out = {"plain": [], "usage": []}
        for name in names if len(names) > 1 else []:
            others = CodeUsage(sum(counts[n] for n in names if n != name))
            held_out["plain"].append(quantisation_error(latents[name], plain.centroids))
            book = codec.codebooks.get(k, others)
            held_out["usage"].append(quantisation_error(latents[name], book.centroids))
        row = {
            "codebook": k,
            "latent_mse_plain": quantisation_error(everything, plain.centroids),
            "latent_mse_usage_in_sample": quantisation_error(everything, usage.centroids),
            "latent_mse_full_codebook": quantisation_error(everything, full.centroids),
        }
        if held_out["plain"]:
            row["latent_mse_plain_per_photo"] = float(np.mean(held_out["plain"]))
            row["latent_mse_usage_leave_one_out"] = float(np.mean(held_out["usage"]))
        for kind, book in (("plain", plain), ("usage_in_sample", usage)):
            row[f"psnr_db_{kind}"] = float(
                np.mean(
                    [
                        psnr(
                            image, codec.render(codec.vq.encode(image, book), book, image.shape[:2])
                        )
                        for image in images.values()
                    ]
                )
            )
        row["usage_lowers_error_in_sample"] = (
            row["latent_mse_usage_in_sample"] < row["latent_mse_plain"]
        )
        if "latent_mse_usage_leave_one_out" in row:
            row["usage_lowers_error_leave_one_out"] = (
                row["latent_mse_usage_leave_one_out"] < row["latent_mse_plain_per_photo"]
            )
        rows.append({key: round(v, 6) if isinstance(v, float) else v for key, v in row.items()})
    return rows


def run_one(engine, name: str, image, k: int, coder: str) -> dict:
    import numpy as np

    result = engine.compress(image, codebook_size=k, coder=coder, baselines=True)
    start = time.perf_counter()
    again = engine.decompress(result.zsc)
    file_decode_s = time.perf_counter() - start
    m = result.metrics
    rates = {row["codec"]: _rounded(row) for row in result.rates[1:]}
    return {
        "image": name,
        "codebook": k,
        "coder": coder,
        "exact_round_trip": bool(np.array_equal(again.tokens, result.tokens)),
        "file_bytes": m["file_bytes"],
        "header_bytes": m["header_bytes"],
        "bpp": round(m["bpp"], 5),
        "payload_bpp": round(m["payload_bpp"], 5),
        "bits_per_token": round(m["bits_per_token"], 4),
        "token_entropy_bits": round(m["token_entropy_bits"], 4),
        "model_ideal_bits_per_token": (
            round(m["model_ideal_bits_per_token"], 4) if "model_ideal_bits_per_token" in m else None
        ),
        "log2_k": m["fixed_bits_per_token"],
        "encode_s": round(m["encode_s"], 4),
        "decode_s": round(file_decode_s, 4),
        "psnr_db": round(m["psnr_db"], 3),
        "ms_ssim": None if m["ms_ssim"] is None else round(m["ms_ssim"], 4),
        "ms_ssim_kind": m["ms_ssim_kind"],
        "baselines": rates,
    }


def _rounded(row: dict) -> dict:
    return {
        "setting": row["setting"],
        "bytes": row["bytes"],
        "bpp": round(row["bpp"], 5),
        "psnr_db": round(row["psnr_db"], 3),
        "ms_ssim": None if row["ms_ssim"] is None else round(row["ms_ssim"], 4),
    }


def summarise(runs: list[dict]) -> list[dict]:
    """Means over the images for each (K, coder), with the same-bytes baselines beside them."""
    summary = []
    for key in dict.fromkeys((r["codebook"], r["coder"]) for r in runs):
        group = [r for r in runs if (r["codebook"], r["coder"]) == key]
        row = {"codebook": key[0], "coder": key[1], "images": len(group)}
        for field in (
            "bpp",
            "bits_per_token",
            "token_entropy_bits",
            "encode_s",
            "decode_s",
            "psnr_db",
        ):
            row[field] = round(statistics.mean(r[field] for r in group), 4)
        ideal = [r["model_ideal_bits_per_token"] for r in group]
        row["model_ideal_bits_per_token"] = (
            round(statistics.mean(ideal), 4) if None not in ideal else None
        )
        row["all_exact"] = all(r["exact_round_trip"] for r in group)
        for codec in ("JPEG same bytes", "WebP same bytes"):
            found = [r["baselines"][codec] for r in group if codec in r["baselines"]]
            row[f"{codec} psnr_db"] = (
                round(statistics.mean(f["psnr_db"] for f in found), 3) if found else None
            )
            row[f"{codec} reached"] = f"{len(found)}/{len(group)}"
        summary.append(row)
    return summary


if __name__ == "__main__":
    sys.exit(main())
