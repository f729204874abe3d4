"""Variable rate by codebook reduction: K-means over the VQGAN's code vectors.

Two kinds: plain K-means, every code counted once (the paper's), and usage-weighted K-means,
every code counted as often as the VQGAN uses it on a set of photos (plus a small prior), so
the centroids follow the codes images actually produce.

Each reduced codebook is computed once, deterministically (fixed seed, float64 on the CPU),
and cached on disk under the model fingerprint, K and (usage-weighted) the usage counts'
fingerprint. A cache file carries a SHA-256 of its content and of the inputs that made it; a
file that fails either, or holds impossible values, is recomputed (and the event logged). The
decoder must use the very same clusters as the encoder, so a CRC of the cluster map travels
in every file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

CODEBOOK_SIZES = tuple(2**i for i in range(4, 14))  # 16 ... 8192
KMEANS_SEED = 0
KMEANS_MAX_ITERATIONS = 60
KMEANS_KINDS = ("plain", "usage")
USAGE_PRIOR = 0.1  # weight of a code the photos never use: a tenth of one use
CACHE_FORMAT = 2  # 1: no checksums (recomputed on first load)

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class CodeUsage:
    """How often the VQGAN picked each code on a set of photos."""

    counts: np.ndarray  # (N,) int64
    source: str = ""  # what was counted, for messages

    @property
    def fingerprint(self) -> bytes:
        """8 bytes of the counts' SHA-256: names the usage-weighted codebooks made from them."""
        data = np.ascontiguousarray(self.counts, dtype="<i8").tobytes()
        return hashlib.sha256(data).digest()[:8]

    @property
    def weights(self) -> np.ndarray:
        return self.counts.astype(np.float64) + USAGE_PRIOR


def check_kmeans(kind: str) -> str:
    if kind not in KMEANS_KINDS:
        raise InputError(
            f"Unknown K-means kind {kind!r}; choose plain (every code counted once) or usage "
            "(codes weighted by how often photos use them)."
        )
    return kind


def check_codebook_size(k: int, available: int = CODEBOOK_SIZES[-1]) -> int:
    offered = [size for size in CODEBOOK_SIZES if size <= available]
    if k not in offered:
        raise InputError(
            f"Codebook size {k} is not offered; choose one of {', '.join(map(str, offered))}."
        )
    return k


def kmeans_codebook(
    codes: np.ndarray, k: int, seed: int = KMEANS_SEED, weights: np.ndarray | None = None
) -> ReducedCodebook:
    """Cluster `codes` (N, D) into k groups: k-means++ seeding, then Lloyd iterations until no
    assignment changes. Empty clusters take the point farthest from its centroid.

    With `weights` (one per code, > 0) each code counts as that many: seeding picks codes in
    proportion to weight x squared distance, each centroid is its members' weighted mean, and
    an empty cluster takes the code of largest weight x squared distance. Without weights the
    operations are exactly the plain algorithm's, so plain codebooks never change."""
    codes = np.asarray(codes, dtype=np.float64)
    count = len(codes)
    if k >= count:
        return ReducedCodebook(
            codes.astype(np.float32), np.arange(count), np.arange(count, dtype=np.int64)
        )
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    rng = np.random.Generator(np.random.PCG64(seed))
    sq_norms = np.einsum("nd,nd->n", codes, codes)
    centroids = np.empty((k, codes.shape[1]))
    if w is None:
        centroids[0] = codes[rng.integers(count)]
    else:
        first = np.searchsorted(np.cumsum(w), rng.random() * w.sum(), side="right")
        centroids[0] = codes[min(int(first), count - 1)]
    nearest = _sq_dist(codes, sq_norms, centroids[:1])[:, 0]
    for index in range(1, k):
        score = nearest if w is None else nearest * w
        total = score.sum()
        if total <= 0:  # fewer distinct vectors than clusters
            pick = int(np.argmax(score))
        else:
            pick = int(np.searchsorted(np.cumsum(score), rng.random() * total, side="right"))
            pick = min(pick, count - 1)
        centroids[index] = codes[pick]
        nearest = np.minimum(nearest, _sq_dist(codes, sq_norms, centroids[index : index + 1])[:, 0])

    labels = np.full(count, -1)
    for _ in range(KMEANS_MAX_ITERATIONS):
        new_labels, own = _assign(codes, sq_norms, centroids)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
        if w is None:
            sizes = np.bincount(labels, minlength=k)
            sums = np.stack(
                [np.bincount(labels, weights=column, minlength=k) for column in codes.T], axis=1
            )
        else:
            sizes = np.bincount(labels, weights=w, minlength=k)
            sums = np.stack(
                [np.bincount(labels, weights=column * w, minlength=k) for column in codes.T],
                axis=1,
            )
        filled = sizes > 0
        centroids[filled] = sums[filled] / sizes[filled, None]
        spread = own if w is None else own * w
        for empty in np.flatnonzero(~filled):
            far = int(np.argmax(spread))
            centroids[empty] = codes[far]
            spread[far] = -1.0
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


def quantisation_error(vectors: np.ndarray, centroids: np.ndarray) -> float:
    """Mean squared distance of each vector (M, D) to its nearest centroid, per dimension."""
    vectors = np.asarray(vectors, dtype=np.float64)
    centroids = np.asarray(centroids, dtype=np.float64)
    sq_norms = np.einsum("nd,nd->n", vectors, vectors)
    _, own = _assign(vectors, sq_norms, centroids)
    return float(own.mean() / vectors.shape[1])


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


def _sha256(*parts) -> str:
    """SHA-256 over arrays (dtype, shape and bytes each) and plain values."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            array = np.ascontiguousarray(part)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.tobytes())
        else:
            digest.update(repr(part).encode())
    return digest.hexdigest()


class CacheProblem(Exception):
    """A cache file that cannot be trusted; the message says why."""


def write_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez into a temporary file beside `path`, flushed to disk, then renamed over it: a
    reader sees the old file or the new one, never a partial one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, **arrays)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_checked(path: Path, inputs_sha256: str | None) -> dict[str, np.ndarray]:
    """The arrays of a cache file written by `write_checked`, after checking the content
    checksum and (when given) the inputs checksum; CacheProblem otherwise."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except Exception as err:  # truncated or empty files raise zipfile, OSError, ValueError...
        raise CacheProblem(f"unreadable ({type(err).__name__}: {err})") from err
    stored = arrays.pop("content_sha256", None)
    inputs = arrays.pop("inputs_sha256", None)
    if stored is None or inputs is None:
        raise CacheProblem("it has no checksums (written by an older version)")
    if _sha256(*(arrays[name] for name in sorted(arrays))) != str(stored):
        raise CacheProblem("its content does not match its checksum")
    if inputs_sha256 is not None and str(inputs) != inputs_sha256:
        raise CacheProblem("it was made from other inputs (model codes, K, seed or usage)")
    return arrays


def write_checked(path: Path, arrays: dict[str, np.ndarray], inputs_sha256: str) -> None:
    content = _sha256(*(arrays[name] for name in sorted(arrays)))
    checked = {
        **arrays,
        "content_sha256": np.array(content),
        "inputs_sha256": np.array(inputs_sha256),
    }
    write_atomically(path, checked)


class CodebookStore:
    """Reduced codebooks of one model, computed on first use and cached on disk."""

    def __init__(self, codes: np.ndarray, model_key: str, cache_dir: Path | None):
        self.codes = np.asarray(codes, dtype=np.float32)
        self.model_key = model_key
        self.cache_dir = cache_dir
        self._memory: dict[tuple[int, bytes], ReducedCodebook] = {}

    def get(self, k: int, usage: CodeUsage | None = None) -> ReducedCodebook:
        """Plain K-means with `usage` None, else K-means weighted by those counts."""
        check_codebook_size(k, len(self.codes))
        key = (k, b"" if usage is None else usage.fingerprint)
        if key not in self._memory:
            self._memory[key] = self._load(k, usage) or self._compute(k, usage)
        return self._memory[key]

    def cache_path(self, k: int, usage_fingerprint: bytes = b"") -> Path | None:
        if self.cache_dir is None:
            return None
        kind = f"-usage-{usage_fingerprint.hex()}" if usage_fingerprint else ""
        return self.cache_dir / f"{self.model_key}-k{k}{kind}.npz"

    def inputs_sha256(self, k: int, usage: CodeUsage | None) -> str:
        weights = None if usage is None else usage.weights
        return _sha256(
            self.codes, k, KMEANS_SEED, KMEANS_MAX_ITERATIONS, USAGE_PRIOR, CACHE_FORMAT, weights
        )

    def cached_usage(self, k: int, fingerprint: bytes) -> CodeUsage | None:
        """The usage counts stored with a cached usage-weighted codebook, if that file checks
        out; what a decoder needs when it does not have the photos that were counted."""
        path = self.cache_path(k, fingerprint)
        if path is None or not path.is_file():
            return None
        try:
            arrays = read_checked(path, None)
            usage = CodeUsage(arrays["usage"].astype(np.int64), f"the cache {path.name}")
            if usage.fingerprint != fingerprint:
                raise CacheProblem("its usage counts do not match its name")
        except (CacheProblem, KeyError) as err:
            log.warning("Codebook cache %s: %s; ignoring it.", path, err)
            return None
        return usage

    def _load(self, k: int, usage: CodeUsage | None) -> ReducedCodebook | None:
        path = self.cache_path(k, b"" if usage is None else usage.fingerprint)
        if path is None or not path.is_file():
            return None
        try:
            arrays = read_checked(path, self.inputs_sha256(k, usage))
            return self._valid(arrays, k)
        except CacheProblem as err:
            log.warning("Codebook cache %s: %s; recomputing it.", path, err)
            return None

    def _valid(self, arrays: dict[str, np.ndarray], k: int) -> ReducedCodebook:
        """The codebook in `arrays`, or CacheProblem if any value is impossible."""
        try:
            centroids, labels = arrays["centroids"], arrays["labels"].astype(np.int64)
            representatives = arrays["representatives"].astype(np.int64)
        except KeyError as err:
            raise CacheProblem(f"it lacks {err}") from err
        count, dim = self.codes.shape
        if centroids.shape != (k, dim) or labels.shape != (count,) or representatives.shape != (k,):
            raise CacheProblem("its arrays have the wrong shapes")
        if not np.isfinite(centroids).all():
            raise CacheProblem("its centroids are not all finite")
        if labels.min() < 0 or labels.max() >= k:
            raise CacheProblem(f"its cluster labels leave 0..{k - 1}")
        if representatives.min() < 0 or representatives.max() >= count:
            raise CacheProblem(f"its representatives leave 0..{count - 1}")
        return ReducedCodebook(centroids.astype(np.float32), labels, representatives)

    def _compute(self, k: int, usage: CodeUsage | None) -> ReducedCodebook:
        weights = None if usage is None else usage.weights
        book = kmeans_codebook(self.codes, k, weights=weights)
        path = self.cache_path(k, b"" if usage is None else usage.fingerprint)
        if path is not None:
            arrays = {
                "centroids": book.centroids,
                "labels": book.labels.astype(np.int32),
                "representatives": book.representatives,
            }
            if usage is not None:
                arrays["usage"] = usage.counts.astype(np.int64)
            try:
                write_checked(path, arrays, self.inputs_sha256(k, usage))
            except OSError as err:  # a read-only cache only costs recomputation
                log.warning("Could not write the codebook cache %s: %s", path, err)
        return book
