"""The compression engine: the three tasks (compress, decompress, restore lost tokens) on the
aMUSEd VQGAN and masked transformer. Requests are in `requests`, results in `results`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..base import Engine, Progress
from ..errors import InputError
from ..hashing import array_sha256
from ..parts import LoadContext, Parts
from . import baselines as classical
from .bitstream import MAX_SIDE_IN_FILE, max_payload_bytes, read_zsc
from .codec import TokenCodec
from .images import load_rgb
from .loading import load_amused
from .quality import psnr
from .requests import (
    DEFAULT_CODEBOOK_SIZE,
    DEFAULT_CODER,
    DEFAULT_LOST_FRACTION,
    CompressRequest,
    DecompressRequest,
    RestoreRequest,
)
from .restoration import DEFAULT_STEPS, lose_tokens, maskgit_restore, nearest_fill
from .results import (
    CompressResult,
    DecompressResult,
    RestoreResult,
    baseline_metrics,
    entropy_bits,
    quality,
    rate_rows,
)


def _read_file(source: Any) -> bytes:
    """A .zsc file's bytes, its header checked: a damaged or foreign file is refused before
    any model loads."""
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise InputError(f"File {path.name} does not exist.")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InputError(f"{path.name} is over {MAX_FILE_BYTES >> 20} MB: not a .zsc file.")
        data = path.read_bytes()
    read_zsc(data)
    return data


MAX_FILE_BYTES = max_payload_bytes(MAX_SIDE_IN_FILE, MAX_SIDE_IN_FILE) + 1024


def load_codec(context: LoadContext) -> TokenCodec:
    return TokenCodec(load_amused(context.resolve("amused"), context.device))


class CompressionEngine(Engine):
    """Extreme image compression with VQGAN tokens (aMUSEd), K-means codebooks, range coding
    under the masked transformer, and masked-token restoration."""

    name = "compression"
    tasks = {
        CompressRequest: "_compress",
        DecompressRequest: "_decompress",
        RestoreRequest: "_restore",
    }

    def load(self, context: LoadContext) -> Parts:
        parts = context.lazy({"codec": load_codec})
        parts.get("codec")  # every task needs it
        return parts

    # the public API, one method per task
    def compress(
        self,
        image: Any,
        codebook_size: int = DEFAULT_CODEBOOK_SIZE,
        coder: str = DEFAULT_CODER,
        baselines: bool = True,
        progress: Progress | None = None,
        kmeans: str = "plain",
    ) -> CompressResult:
        request = CompressRequest(image, codebook_size, coder, baselines, kmeans)
        return self.run(request, progress)

    def decompress(self, file: Any, progress: Progress | None = None) -> DecompressResult:
        return self.run(DecompressRequest(file), progress)

    def restore_tokens(
        self,
        file: Any,
        lost_fraction: float = DEFAULT_LOST_FRACTION,
        seed: int = 0,
        steps: int = DEFAULT_STEPS,
        original: Any = None,
        progress: Progress | None = None,
    ) -> RestoreResult:
        return self.run(RestoreRequest(file, lost_fraction, seed, steps, original), progress)

    def _compress(self, request: CompressRequest, progress: Progress) -> CompressResult:
        image = load_rgb(request.image)
        height, width = image.shape[:2]
        k = request.codebook_size
        with self.manager.use(self.name) as parts:
            codec: TokenCodec = parts.get("codec")
            progress(0.02, f"K-means codebook K={k}")
            codec.codebook(k, request.kmeans)
            start = time.perf_counter()
            encoded = codec.compress(
                image,
                k,
                request.coder,
                lambda f: progress(0.05 + 0.4 * f, "Coding tokens"),
                request.kmeans,
            )
            encode_s = time.perf_counter() - start
            start = time.perf_counter()
            # what we show is what the file decodes to: decode the bytes, not the tokens
            decoded_tokens = codec.decode_tokens(
                encoded.data, lambda f: progress(0.45 + 0.4 * f, "Decoding the file")
            )
            decoded = codec.render(decoded_tokens.tokens, decoded_tokens.codebook, (height, width))
            decode_s = time.perf_counter() - start
            sources = parts.sources("codec")
        pixels = height * width
        tokens = encoded.tokens
        metrics: dict[str, Any] = {
            "codebook": k,
            "coder": request.coder,
            "kmeans": encoded.header.kmeans,
            "width": width,
            "height": height,
            "token_grid": f"{tokens.shape[1]}x{tokens.shape[0]}",
            "file_bytes": len(encoded.data),
            "header_bytes": encoded.header_bytes,
            "payload_bytes": encoded.payload_bytes,
            "bpp": 8 * len(encoded.data) / pixels,
            "payload_bpp": 8 * encoded.payload_bytes / pixels,
            "bits_per_token": 8 * encoded.payload_bytes / tokens.size,
            "fixed_bits_per_token": int(np.log2(k)),
            "token_entropy_bits": entropy_bits(tokens),
            "encode_s": encode_s,
            "decode_s": decode_s,
            "image_sha256": array_sha256(image),
        }
        if encoded.ideal_bits is not None:
            metrics["model_ideal_bits_per_token"] = encoded.ideal_bits / tokens.size
        metrics |= quality(image, decoded)
        found: list[classical.BaselineEncode] = []
        if request.baselines:
            progress(0.9, "JPEG / WebP baselines")
            found = _baselines(image, len(encoded.data), metrics)
        rates = rate_rows(image, metrics, found)
        metrics |= baseline_metrics(rates)
        progress(1.0, "Done")
        return CompressResult(
            recipe=self.recipe(request, sources, None),
            metrics=metrics,
            zsc=encoded.data,
            original=image,
            decoded=decoded,
            tokens=tokens,
            baselines=found,
            rates=rates,
        )

    def _decompress(self, request: DecompressRequest, progress: Progress) -> DecompressResult:
        data = _read_file(request.file)
        with self.manager.use(self.name) as parts:
            codec: TokenCodec = parts.get("codec")
            start = time.perf_counter()
            decoded = codec.decode_tokens(data, lambda f: progress(0.9 * f, "Decoding tokens"))
            header = decoded.header
            image = codec.render(decoded.tokens, decoded.codebook, (header.height, header.width))
            decode_s = time.perf_counter() - start
            sources = parts.sources("codec")
        metrics = {
            "width": header.width,
            "height": header.height,
            "codebook": header.codebook_size,
            "coder": header.coder,
            "kmeans": header.kmeans,
            "model": header.model_id,
            "file_bytes": len(data),
            "bpp": 8 * len(data) / header.pixels,
            "decode_s": decode_s,
        }
        progress(1.0, "Done")
        return DecompressResult(
            recipe=self.recipe(request, sources, None),
            metrics=metrics,
            image=image,
            tokens=decoded.tokens,
        )

    def _restore(self, request: RestoreRequest, progress: Progress) -> RestoreResult:
        data = _read_file(request.file)
        original = None if request.original is None else load_rgb(request.original)
        with self.manager.use(self.name) as parts:
            codec: TokenCodec = parts.get("codec")
            decoded = codec.decode_tokens(data, lambda f: progress(0.3 * f, "Decoding tokens"))
            header, tokens, book = decoded.header, decoded.tokens, decoded.codebook
            size = (header.height, header.width)
            lost = lose_tokens(tokens.shape, request.lost_fraction, request.seed)
            naive_tokens = nearest_fill(tokens, lost)
            restored_tokens = maskgit_restore(
                codec.model,
                tokens,
                lost,
                book,
                request.steps,
                lambda f: progress(0.3 + 0.5 * f, "Restoring lost tokens"),
            )
            progress(0.85, "Decoding images")
            intact, naive, restored = (
                codec.render(grid, book, size) for grid in (tokens, naive_tokens, restored_tokens)
            )
            sources = parts.sources("codec")
        if original is not None and original.shape != intact.shape:
            raise InputError(
                f"The original image is {original.shape[1]}x{original.shape[0]} but the file "
                f"is {header.width}x{header.height}; give the image the file was made from."
            )
        reference = intact if original is None else original
        lost_count = int(lost.sum())
        metrics: dict[str, Any] = {
            "reference": "intact decode" if original is None else "original image",
            "lost_tokens": lost_count,
            "lost_fraction": lost_count / tokens.size,
            "psnr_restored_db": psnr(reference, restored),
            "psnr_naive_db": psnr(reference, naive),
            "restored_token_accuracy": _accuracy(restored_tokens, tokens, lost),
            "naive_token_accuracy": _accuracy(naive_tokens, tokens, lost),
        }
        if original is not None:
            metrics["psnr_intact_db"] = psnr(original, intact)
        progress(1.0, "Done")
        return RestoreResult(
            recipe=self.recipe(request, sources, request.seed),
            metrics=metrics,
            restored=restored,
            naive=naive,
            intact=intact,
            lost=lost,
        )


def _baselines(
    image: np.ndarray, budget: int, metrics: dict[str, Any]
) -> list[classical.BaselineEncode]:
    """Each classical codec at its smallest, and at no more than `budget` bytes where it can
    get there (where it cannot, `metrics` says so)."""
    found = []
    for name in classical.available_codecs():
        found.append(classical.smallest(image, name))
        matched = classical.at_budget(image, name, budget)
        if matched is None:
            metrics[f"{name.lower()}_same_bytes"] = f"cannot reach {budget} bytes"
        else:
            found.append(matched)
    return found


def _accuracy(guess: np.ndarray, truth: np.ndarray, lost: np.ndarray) -> float | None:
    """Fraction of lost tokens recovered exactly (None when nothing was lost)."""
    return float((guess[lost] == truth[lost]).mean()) if lost.any() else None
