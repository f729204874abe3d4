"""Code usage for usage-weighted K-means: how often the VQGAN picks each of its codes on a set
of photos (the shipped examples in assets/compression, or the folder named by
ZSS_COMPRESSION_USAGE_IMAGES), counted once per model and set of photos, and cached."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from .codebook import CacheProblem, CodeUsage, ReducedCodebook, read_checked, write_checked
from .images import load_rgb
from .vq import VQTokenizer

USAGE_IMAGES_VARIABLE = "ZSS_COMPRESSION_USAGE_IMAGES"
SHIPPED_PHOTOS = Path(__file__).resolve().parents[2] / "assets" / "compression"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")

log = logging.getLogger(__name__)


def usage_folder() -> Path:
    """Where code usage is counted: ZSS_COMPRESSION_USAGE_IMAGES, else the shipped photos."""
    return Path(os.environ.get(USAGE_IMAGES_VARIABLE) or SHIPPED_PHOTOS)


def usage_images(folder: Path) -> list[Path]:
    images = sorted(p for p in Path(folder).glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise InputError(
            f"Usage-weighted K-means counts how often the VQGAN uses each code on photos, and "
            f"{folder} holds none (PNG, JPEG, WebP). Set {USAGE_IMAGES_VARIABLE} to a folder "
            "of photos, or use plain K-means."
        )
    return images


def count_usage(vq: VQTokenizer, full: ReducedCodebook, images: list) -> np.ndarray:
    """(N,) how many tokens of `images` (paths or arrays) the VQGAN's own quantisation gives
    each code."""
    counts = np.zeros(len(full.labels), dtype=np.int64)
    for image in images:
        tokens = vq.encode(load_rgb(image), full)
        counts += np.bincount(tokens.ravel(), minlength=len(counts))
    return counts


class UsageCounter:
    """Code usage of one model, per folder of photos, cached on disk beside the codebooks."""

    def __init__(self, vq: VQTokenizer, full_codebook, model_key: str, cache_dir: Path | None):
        self.vq = vq
        self.full_codebook = full_codebook  # () -> the K = N codebook
        self.model_key = model_key
        self.cache_dir = cache_dir
        self._memory: dict[str, CodeUsage] = {}

    def get(self, folder: Path | None = None) -> CodeUsage:
        folder = folder or usage_folder()
        images = usage_images(folder)
        inputs = self._inputs_sha256(images)
        if inputs not in self._memory:
            counts = self._load(inputs)
            if counts is None:
                counts = count_usage(self.vq, self.full_codebook(), images)
                self._save(inputs, counts)
            source = f"{len(images)} photos in {folder}"
            self._memory[inputs] = CodeUsage(counts, source)
        return self._memory[inputs]

    def _inputs_sha256(self, images: list[Path]) -> str:
        digest = hashlib.sha256(self.model_key.encode())
        for path in images:
            digest.update(path.name.encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()

    def _path(self, inputs: str) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"{self.model_key}-usage-{inputs[:16]}.npz"

    def _load(self, inputs: str) -> np.ndarray | None:
        path = self._path(inputs)
        if path is None or not path.is_file():
            return None
        try:
            counts = read_checked(path, inputs).get("counts")
            if counts is None or counts.shape != self.full_codebook().labels.shape:
                raise CacheProblem("its counts have the wrong shape")
            if counts.min() < 0 or counts.sum() <= 0:
                raise CacheProblem("its counts are impossible")
        except CacheProblem as err:
            log.warning("Code usage cache %s: %s; counting again.", path, err)
            return None
        return counts.astype(np.int64)

    def _save(self, inputs: str, counts: np.ndarray) -> None:
        path = self._path(inputs)
        if path is None:
            return
        try:
            write_checked(path, {"counts": counts.astype(np.int64)}, inputs)
        except OSError as err:
            log.warning("Could not write the code usage cache %s: %s", path, err)
