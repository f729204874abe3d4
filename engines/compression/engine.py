"""The compression engine: requests, results, and the three tasks (compress, decompress,
restore lost tokens) on the aMUSEd VQGAN and masked transformer."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..base import Engine, Progress, Request, Result, no_progress
from ..errors import InputError
from ..manager import LoadContext
from . import baselines as classical
from .amused import load_amused
from .codebook import CODEBOOK_SIZES, check_codebook_size, check_kmeans
from .codec import CODERS, TokenCodec
from .images import image_sha256, load_rgb, png_bytes
from .quality import ms_ssim, psnr
from .restoration import DEFAULT_STEPS, lose_tokens, maskgit_restore, nearest_fill


def _describe_source(source: Any, kind: str) -> str | None:
    if source is None or isinstance(source, (str, Path)):
        return None if source is None else str(source)
    return f"<in-memory {kind}>"


@dataclass
class CompressRequest(Request):
    """Compress one image. `image`: a path, PIL image or HxWx3 array."""

    task: ClassVar[str] = "compress"
    image: Any = None
    codebook: int = 256
    coder: str = "fixed"
    baselines: bool = True
    kmeans: str = "plain"  # or "usage": K-means weighted by code usage on photos

    def validate(self) -> None:
        if self.image is None:
            raise InputError("No image given: upload a photo to compress.")
        try:
            self.codebook = int(self.codebook)
        except (TypeError, ValueError) as err:
            raise InputError(f"Codebook size must be a number, not {self.codebook!r}.") from err
        check_codebook_size(self.codebook)
        if self.coder not in CODERS:
            raise InputError(f"Unknown coder {self.coder!r}; choose one of {', '.join(CODERS)}.")
        check_kmeans(self.kmeans)

    def to_params(self) -> dict[str, Any]:
        params = dataclasses.asdict(self) | {"task": self.task}
        params["image"] = _describe_source(self.image, "image")
        return params


@dataclass
class DecompressRequest(Request):
    """Decode a .zsc file. `file`: a path or the file's bytes."""

    task: ClassVar[str] = "decompress"
    file: Any = None

    def validate(self) -> None:
        if self.file is None:
            raise InputError("No .zsc file given: upload one made by the compression tab.")

    def to_params(self) -> dict[str, Any]:
        return {"task": self.task, "file": _describe_source(self.file, ".zsc file")}


@dataclass
class RestoreRequest(Request):
    """Lose a seeded fraction of a file's tokens and restore them. `original` (optional) is the
    image the file was made from, for measuring against it."""

    task: ClassVar[str] = "restore"
    file: Any = None
    loss: float = 0.2
    seed: int = 0
    steps: int = DEFAULT_STEPS
    original: Any = None

    def validate(self) -> None:
        if self.file is None:
            raise InputError("No .zsc file given: compress an image first.")
        if not 1 <= int(self.steps) <= 64:
            raise InputError(f"Restoration steps must be 1 to 64, not {self.steps}.")

    def to_params(self) -> dict[str, Any]:
        params = dataclasses.asdict(self) | {"task": self.task}
        params["file"] = _describe_source(self.file, ".zsc file")
        params["original"] = _describe_source(self.original, "image")
        return params


TASKS: dict[str, type[Request]] = {
    r.task: r for r in (CompressRequest, DecompressRequest, RestoreRequest)
}


def _quality(reference: np.ndarray, decoded: np.ndarray) -> dict[str, Any]:
    value, kind = ms_ssim(reference, decoded)
    return {"psnr_db": psnr(reference, decoded), "ms_ssim": value, "ms_ssim_kind": kind}


def _rate_rows(
    image: np.ndarray, ours: dict[str, Any], found: list[classical.BaselineEncode]
) -> list[dict[str, Any]]:
    """One row per codec: bytes, bpp (from file bytes), PSNR and MS-SSIM, all measured."""
    pixels = image.shape[0] * image.shape[1]
    rows = [
        {
            "codec": "VQGAN tokens (ours)",
            "setting": f"K={ours['codebook']}, {ours['coder']} coder",
            "bytes": ours["file_bytes"],
            "bpp": ours["bpp"],
            "psnr_db": ours["psnr_db"],
            "ms_ssim": ours["ms_ssim"],
        }
    ]
    for base in found:
        quality = _quality(image, base.decoded)
        rows.append(
            {
                "codec": f"{base.codec} {base.mode}",
                "setting": base.setting,
                "bytes": base.nbytes,
                "bpp": 8 * base.nbytes / pixels,
                "psnr_db": quality["psnr_db"],
                "ms_ssim": quality["ms_ssim"],
            }
        )
    return rows


def _entropy_bits(tokens: np.ndarray) -> float:
    """Zeroth-order empirical entropy of the tokens (bits/token): the memoryless bound."""
    counts = np.unique(tokens, return_counts=True)[1].astype(np.float64)
    freqs = counts / counts.sum()
    return float(-(freqs * np.log2(freqs)).sum())


@dataclass
class CompressResult(Result):
    zsc: bytes = b""
    original: np.ndarray | None = None
    decoded: np.ndarray | None = None
    tokens: np.ndarray | None = None
    baselines: list[classical.BaselineEncode] = field(default_factory=list)
    rates: list[dict[str, Any]] = field(default_factory=list)  # one row per codec, measured

    def output_summary(self) -> dict[str, Any]:
        return {
            "zsc_bytes": len(self.zsc),
            "image": f"{self.original.shape[1]}x{self.original.shape[0]}",
            "tokens": list(self.tokens.shape),
            "baselines": [b.label for b in self.baselines],
        }

    def save(self, folder: str | Path) -> list[Path]:
        folder = Path(folder)
        files = super().save(folder)
        (folder / "compressed.zsc").write_bytes(self.zsc)
        (folder / "decoded.png").write_bytes(png_bytes(self.decoded))
        files += [folder / "compressed.zsc", folder / "decoded.png"]
        for base in self.baselines:
            ext = {"JPEG": "jpg", "WebP": "webp", "AVIF": "avif"}[base.codec]
            path = folder / f"{base.codec.lower()}-{base.mode.replace(' ', '-')}.{ext}"
            path.write_bytes(base.data)
            files.append(path)
        return files


@dataclass
class DecompressResult(Result):
    image: np.ndarray | None = None
    tokens: np.ndarray | None = None

    def output_summary(self) -> dict[str, Any]:
        return {"image": f"{self.image.shape[1]}x{self.image.shape[0]}"}

    def save(self, folder: str | Path) -> list[Path]:
        folder = Path(folder)
        files = super().save(folder)
        (folder / "decoded.png").write_bytes(png_bytes(self.image))
        return files + [folder / "decoded.png"]


@dataclass
class RestoreResult(Result):
    restored: np.ndarray | None = None
    naive: np.ndarray | None = None
    intact: np.ndarray | None = None
    lost: np.ndarray | None = None  # (h, w) bool

    def output_summary(self) -> dict[str, Any]:
        return {"lost_tokens": int(self.lost.sum()), "tokens": list(self.lost.shape)}

    def save(self, folder: str | Path) -> list[Path]:
        folder = Path(folder)
        files = super().save(folder)
        for name in ("restored", "naive", "intact"):
            path = folder / f"{name}.png"
            path.write_bytes(png_bytes(getattr(self, name)))
            files.append(path)
        return files


def _read_file(source: Any) -> bytes:
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise InputError(f"File {path} does not exist.")
        data = path.read_bytes()
    if not data:
        raise InputError("The .zsc file is empty.")
    return data


class CompressionEngine(Engine):
    """Extreme image compression with VQGAN tokens (aMUSEd), K-means codebooks, range coding
    under the masked transformer, and masked-token restoration."""

    name = "compression"
    request_type = CompressRequest
    request_types = TASKS
    codebook_sizes = CODEBOOK_SIZES
    coders = CODERS

    def load(self, context: LoadContext) -> dict[str, Any]:
        parts = load_amused(context.resolve("amused"), context.device)
        return {"codec": TokenCodec(parts)}

    def run(self, request: Request, progress: Progress | None = None) -> Result:
        if isinstance(request, CompressRequest):
            return self._compress(request, progress or no_progress)
        if isinstance(request, DecompressRequest):
            return self._decompress(request, progress or no_progress)
        if isinstance(request, RestoreRequest):
            return self._restore(request, progress or no_progress)
        raise InputError(f"The compression engine cannot run a {type(request).__name__}.")

    # the public API, one method per task
    def compress(
        self,
        image: Any,
        codebook: int = 256,
        coder: str = "fixed",
        baselines: bool = True,
        progress: Progress | None = None,
        kmeans: str = "plain",
    ) -> CompressResult:
        return self.run(CompressRequest(image, codebook, coder, baselines, kmeans), progress)

    def decompress(self, file: Any, progress: Progress | None = None) -> DecompressResult:
        return self.run(DecompressRequest(file), progress)

    def restore_tokens(
        self,
        file: Any,
        loss: float = 0.2,
        seed: int = 0,
        steps: int = DEFAULT_STEPS,
        original: Any = None,
        progress: Progress | None = None,
    ) -> RestoreResult:
        return self.run(RestoreRequest(file, loss, seed, steps, original), progress)

    def _compress(self, request: CompressRequest, progress: Progress) -> CompressResult:
        request.validate()
        image = load_rgb(request.image)
        height, width = image.shape[:2]
        with self.manager.use(self.name) as models:
            codec: TokenCodec = models["codec"]
            progress(0.02, f"K-means codebook K={request.codebook}")
            codec.codebook(request.codebook, request.kmeans)
            start = time.perf_counter()
            encoded = codec.compress(
                image,
                request.codebook,
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
            sources = models.sources
        pixels = height * width
        tokens = encoded.tokens
        metrics: dict[str, Any] = {
            "codebook": request.codebook,
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
            "fixed_bits_per_token": int(np.log2(request.codebook)),
            "token_entropy_bits": _entropy_bits(tokens),
            "encode_s": encode_s,
            "decode_s": decode_s,
            "image_sha256": image_sha256(image),
        }
        if encoded.ideal_bits is not None:
            metrics["model_ideal_bits_per_token"] = encoded.ideal_bits / tokens.size
        metrics |= _quality(image, decoded)
        found: list[classical.BaselineEncode] = []
        if request.baselines:
            progress(0.9, "JPEG / WebP baselines")
            for name in classical.available_codecs():
                found.append(classical.smallest(image, name))
                matched = classical.at_budget(image, name, len(encoded.data))
                key = f"{name.lower()}_same_bytes"
                if matched is None:
                    metrics[key] = f"cannot reach {len(encoded.data)} bytes"
                else:
                    found.append(matched)
        rates = _rate_rows(image, metrics, found)
        for row in rates[1:]:
            key = row["codec"].lower().replace(" ", "_")
            metrics |= {f"{key}_{n}": row[n] for n in ("bytes", "bpp", "psnr_db", "ms_ssim")}
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
        request.validate()
        data = _read_file(request.file)
        with self.manager.use(self.name) as models:
            codec: TokenCodec = models["codec"]
            start = time.perf_counter()
            decoded = codec.decode_tokens(data, lambda f: progress(0.9 * f, "Decoding tokens"))
            header = decoded.header
            image = codec.render(decoded.tokens, decoded.codebook, (header.height, header.width))
            decode_s = time.perf_counter() - start
            sources = models.sources
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
        request.validate()
        data = _read_file(request.file)
        original = None if request.original is None else load_rgb(request.original)
        with self.manager.use(self.name) as models:
            codec: TokenCodec = models["codec"]
            decoded = codec.decode_tokens(data, lambda f: progress(0.3 * f, "Decoding tokens"))
            header, tokens, book = decoded.header, decoded.tokens, decoded.codebook
            size = (header.height, header.width)
            lost = lose_tokens(tokens.shape, float(request.loss), int(request.seed))
            naive_tokens = nearest_fill(tokens, lost)
            restored_tokens = maskgit_restore(
                codec.model,
                tokens,
                lost,
                book,
                int(request.steps),
                lambda f: progress(0.3 + 0.5 * f, "Restoring lost tokens"),
            )
            progress(0.85, "Decoding images")
            intact, naive, restored = (
                codec.render(grid, book, size) for grid in (tokens, naive_tokens, restored_tokens)
            )
            sources = models.sources
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
            recipe=self.recipe(request, sources, int(request.seed)),
            metrics=metrics,
            restored=restored,
            naive=naive,
            intact=intact,
            lost=lost,
        )


def _accuracy(guess: np.ndarray, truth: np.ndarray, lost: np.ndarray) -> float | None:
    """Fraction of lost tokens recovered exactly (None when nothing was lost)."""
    return float((guess[lost] == truth[lost]).mean()) if lost.any() else None
