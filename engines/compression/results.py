"""What the compression engine returns: the .zsc file and what it decodes to, measured beside
the classical codecs; a decoded file; restored tokens beside the naive fill. Rates always come
from file bytes, quality from the decoded pixels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..base import Result
from ..metric_labels import Metric, MetricLabels
from ..outputs import png_bytes
from .baselines import BaselineEncode
from .quality import ms_ssim, psnr

OURS = "VQGAN tokens (ours)"
EXTENSIONS = {"JPEG": "jpg", "WebP": "webp", "AVIF": "avif"}


def quality(reference: np.ndarray, decoded: np.ndarray) -> dict[str, Any]:
    """PSNR and MS-SSIM (single-scale SSIM on small images; `ms_ssim_kind` says which)."""
    value, kind = ms_ssim(reference, decoded)
    return {"psnr_db": psnr(reference, decoded), "ms_ssim": value, "ms_ssim_kind": kind}


def entropy_bits(tokens: np.ndarray) -> float:
    """Zeroth-order empirical entropy of the tokens (bits/token): the memoryless bound."""
    counts = np.unique(tokens, return_counts=True)[1].astype(np.float64)
    freqs = counts / counts.sum()
    return float(-(freqs * np.log2(freqs)).sum())


def rate_rows(
    image: np.ndarray, ours: dict[str, Any], found: list[BaselineEncode]
) -> list[dict[str, Any]]:
    """One row per codec, ours first: bytes, bpp (from file bytes), PSNR and MS-SSIM, all
    measured on `image`. `ours` is our file's metrics."""
    pixels = image.shape[0] * image.shape[1]
    rows = [
        {
            "codec": OURS,
            "setting": f"K={ours['codebook']}, {ours['coder']} coder",
            "bytes": ours["file_bytes"],
            "bpp": ours["bpp"],
            "psnr_db": ours["psnr_db"],
            "ms_ssim": ours["ms_ssim"],
        }
    ]
    for base in found:
        measured = quality(image, base.decoded)
        rows.append(
            {
                "codec": f"{base.codec} {base.mode}",
                "setting": base.setting,
                "bytes": base.nbytes,
                "bpp": 8 * base.nbytes / pixels,
                "psnr_db": measured["psnr_db"],
                "ms_ssim": measured["ms_ssim"],
            }
        )
    return rows


def baseline_metrics(rates: list[dict[str, Any]]) -> dict[str, Any]:
    """The classical codecs' rows as flat metrics: `jpeg_smallest_bpp`, ..."""
    metrics: dict[str, Any] = {}
    for row in rates:
        if row["codec"] == OURS:
            continue
        key = row["codec"].lower().replace(" ", "_")
        metrics |= {f"{key}_{name}": row[name] for name in ("bytes", "bpp", "psnr_db", "ms_ssim")}
    return metrics


def baseline_name(base: BaselineEncode) -> str:
    """The file name of a baseline's encode: `jpeg-smallest.jpg`, `webp-same-bytes.webp`."""
    return f"{base.codec.lower()}-{base.mode.replace(' ', '-')}.{EXTENSIONS[base.codec]}"


METRIC_LABELS = MetricLabels(
    {
        "codebook": Metric("codebook size K", "", "token vocabulary of the file"),
        "file_bytes": Metric("file size", "bytes", "the whole .zsc file"),
        "header_bytes": Metric("header", "bytes", "of the file"),
        "payload_bytes": Metric("payload", "bytes", "the coded tokens"),
        "bpp": Metric("bits per pixel", "bpp", "file size over the image's pixels"),
        "payload_bpp": Metric("payload bits per pixel", "bpp", "tokens only"),
        "bits_per_token": Metric("bits per token", "", "as coded"),
        "fixed_bits_per_token": Metric("fixed-length bits per token", "", "log2 K"),
        "token_entropy_bits": Metric("token entropy", "bits", "per token, of this image's tokens"),
        "model_ideal_bits_per_token": Metric(
            "model's ideal bits per token", "", "what the transformer's probabilities allow"
        ),
        "encode_s": Metric("encode time", "s", "models loaded"),
        "decode_s": Metric("decode time", "s", "models loaded"),
        "psnr_db": Metric("PSNR", "dB", "decoded vs original"),
        "ms_ssim": Metric("MS-SSIM", "", "decoded vs original, 1 is identical"),
        "psnr_restored_db": Metric("PSNR, restored", "dB", "transformer fill vs original"),
        "psnr_naive_db": Metric("PSNR, naive fill", "dB", "nearest-token fill vs original"),
        "restored_token_accuracy": Metric("tokens restored exactly", "", "transformer fill"),
        "naive_token_accuracy": Metric("tokens restored exactly, naive", "", "nearest fill"),
        "lost_tokens": Metric("tokens lost", "", "dropped before restoring"),
        "image_sha256": Metric("image SHA-256", "", "of the pixels compressed"),
    },
    elsewhere=(r"(jpeg|webp|avif)_.*",),  # the rate table shows the classical codecs
)


@dataclass
class CompressResult(Result):
    """The .zsc file, the image it decodes to, and the classical codecs on the same image."""

    metric_labels: ClassVar[MetricLabels] = METRIC_LABELS

    zsc: bytes = b""
    original: np.ndarray | None = None
    decoded: np.ndarray | None = None
    tokens: np.ndarray | None = None
    baselines: list[BaselineEncode] = field(default_factory=list)
    rates: list[dict[str, Any]] = field(default_factory=list)  # one row per codec, measured

    def output_summary(self) -> dict[str, Any]:
        return {
            "zsc_bytes": len(self.zsc),
            "image": f"{self.original.shape[1]}x{self.original.shape[0]}",
            "tokens": list(self.tokens.shape),
            "baselines": [b.label for b in self.baselines],
        }

    def files(self) -> dict[str, bytes]:
        files = {"compressed.zsc": self.zsc, "decoded.png": png_bytes(self.decoded)}
        files |= {baseline_name(base): base.data for base in self.baselines}
        return files


@dataclass
class DecompressResult(Result):
    """The image a .zsc file decodes to, and its tokens."""

    metric_labels: ClassVar[MetricLabels] = METRIC_LABELS

    image: np.ndarray | None = None
    tokens: np.ndarray | None = None

    def output_summary(self) -> dict[str, Any]:
        return {"image": f"{self.image.shape[1]}x{self.image.shape[0]}"}

    def files(self) -> dict[str, bytes]:
        return {"decoded.png": png_bytes(self.image)}


@dataclass
class RestoreResult(Result):
    """A file's image with some tokens lost: restored by the transformer, filled naively, and
    intact for comparison."""

    metric_labels: ClassVar[MetricLabels] = METRIC_LABELS

    restored: np.ndarray | None = None
    naive: np.ndarray | None = None
    intact: np.ndarray | None = None
    lost: np.ndarray | None = None  # (h, w) bool

    def output_summary(self) -> dict[str, Any]:
        return {"lost_tokens": int(self.lost.sum()), "tokens": list(self.lost.shape)}

    def files(self) -> dict[str, bytes]:
        return {
            f"{name}.png": png_bytes(getattr(self, name))
            for name in ("restored", "naive", "intact")
        }
