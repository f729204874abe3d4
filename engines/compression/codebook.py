"""Variable rate by codebook reduction: K-means over the VQGAN's code vectors.

Each reduced codebook is computed once, deterministically (fixed seed, float64 on the CPU),
and cached on disk under the model fingerprint and K. The decoder must use the very same
clusters as the encoder, so a CRC of the cluster map travels in every file.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

CODEBOOK_SIZES = tuple(2**i for i in range(4, 14))  # 16 ... 8192
KMEANS_SEED = 0
KMEANS_MAX_ITERATIONS = 60


@dataclass(frozen=True)
class ReducedCodebook:
    """K centroids, the cluster of every original code, and one original code per cluster
    (the member nearest its centroid) that stands for the cluster in the transformer's input."""

    centroids: np.ndarray  # (K, D) float32
    labels: np.ndarray  # (N,) int64, cluster of each original code
    representatives: np.ndarray  # (K,) int64, an original code per cluster

    @property
    def size(self) -> int:
        return len(self.centroids)

    @property
    def identity(self) -> int:
        """CRC-32 of the cluster map, stored in files to catch a differing reduction."""
        return zlib.crc32(np.ascontiguousarray(self.labels, dtype="<u2").tobytes())


def check_codebook_size(k: int, available: int = CODEBOOK_SIZES[-1]) -> int:
    offered = [size for size in CODEBOOK_SIZES if size <= available]
    if k not in offered:
        raise InputError(
            f"Codebook size {k} is not offered; choose one of {', '.join(map(str, offered))}."
        )
    return k


def kmeans_codebook(codes: np.ndarray, k: int, seed: int = KMEANS_SEED) -> ReducedCodebook:
    """Cluster `codes` (N, D) into k groups: k-means++ seeding, then Lloyd iterations until no
    assignment changes. Empty clusters take the point farthest from its centroid."""
    codes = np.asarray(codes, dtype=np.float64)
    count = len(codes)
    if k >= count:
        return ReducedCodebook(
            codes.astype(np.float32), np.arange(count), np.arange(count, dtype=np.int64)
        )
    rng = np.random.Generator(np.random.PCG64(seed))
    sq_norms = np.einsum("nd,nd->n", codes, codes)
    centroids = np.empty((k, codes.shape[1]))
    centroids[0] = codes[rng.integers(count)]
    nearest = _sq_dist(codes, sq_norms, centroids[:1])[:, 0]
    for index in range(1, k):
        total = nearest.sum()
        if total <= 0:  # fewer distinct vectors than clusters
            pick = int(np.argmax(nearest))
        else:
            pick = int(np.searchsorted(np.cumsum(nearest), rng.random() * total, side="right"))
            pick = min(pick, count - 1)
        centroids[index] = codes[pick]
        nearest = np.minimum(nearest, _sq_dist(codes, sq_norms, centroids[index : index + 1])[:, 0])

    labels = np.full(count, -1)
    for _ in range(KMEANS_MAX_ITERATIONS):
        new_labels, own = _assign(codes, sq_norms, centroids)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
        sizes = np.bincount(labels, minlength=k)
        sums = np.stack(
            [np.bincount(labels, weights=column, minlength=k) for column in codes.T], axis=1
        )
        filled = sizes > 0
        centroids[filled] = sums[filled] / sizes[filled, None]
        for empty in np.flatnonzero(~filled):
            far = int(np.argmax(own))
            centroids[empty] = codes[far]
            own[far] = -1.0
    labels, own = _assign(codes, sq_norms, centroids)
    # the member nearest each centroid stands for it; lexsort is stable, so ties go to the
    # lowest code index
    order = np.lexsort((own, labels))
    first = np.ones(count, dtype=bool)
    first[1:] = labels[order][1:] != labels[order][:-1]
    representatives = np.empty(k, dtype=np.int64)
    for empty in np.setdiff1d(np.arange(k), labels):  # clusters with no member at the end
        representatives[empty] = int(np.argmin(_sq_dist(codes, sq_norms, centroids[empty][None])))
    representatives[labels[order][first]] = order[first]
    return ReducedCodebook(centroids.astype(np.float32), labels, representatives)


def _assign(codes, sq_norms, centroids, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid of every code and the squared distance to it, in row chunks."""
    labels = np.empty(len(codes), dtype=np.int64)
    own = np.empty(len(codes))
    for start in range(0, len(codes), chunk):
        rows = slice(start, start + chunk)
        distances = _sq_dist(codes[rows], sq_norms[rows], centroids)
        labels[rows] = np.argmin(distances, axis=1)
        own[rows] = distances[np.arange(len(distances)), labels[rows]]
    return labels, own


def _sq_dist(codes: np.ndarray, sq_norms: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    c_norms = np.einsum("kd,kd->k", centroids, centroids)
    return np.maximum(sq_norms[:, None] + c_norms[None, :] - 2.0 * codes @ centroids.T, 0.0)


class CodebookStore:
    """Reduced codebooks of one model, computed on first use and cached on disk."""

    def __init__(self, codes: np.ndarray, model_key: str, cache_dir: Path | None):
        self.codes = np.asarray(codes, dtype=np.float32)
        self.model_key = model_key
        self.cache_dir = cache_dir
        self._memory: dict[int, ReducedCodebook] = {}

    def get(self, k: int) -> ReducedCodebook:
        check_codebook_size(k, len(self.codes))
        if k not in self._memory:
            self._memory[k] = self._load(k) or self._compute(k)
        return self._memory[k]

    def cache_path(self, k: int) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"{self.model_key}-k{k}.npz"

    def _load(self, k: int) -> ReducedCodebook | None:
        path = self.cache_path(k)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path) as data:
                book = ReducedCodebook(
                    data["centroids"], data["labels"].astype(np.int64), data["representatives"]
                )
        except (OSError, ValueError, KeyError):
            return None
        ok = book.size == k and book.labels.shape == (len(self.codes),)
        return book if ok else None

    def _compute(self, k: int) -> ReducedCodebook:
        book = kmeans_codebook(self.codes, k)
        path = self.cache_path(k)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
                np.savez(
                    tmp,
                    centroids=book.centroids,
                    labels=book.labels.astype(np.int32),
                    representatives=book.representatives,
                )
                tmp.replace(path)
            except OSError:
                pass  # a read-only cache only costs recomputation
        return book
