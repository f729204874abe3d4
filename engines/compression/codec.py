"""The codec: image -> .zsc bytes -> image, composed from the VQGAN, a reduced codebook, a
token coder and the file format. Bits per pixel always come from the bytes it returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import registry
from ..errors import InputError
from .bitstream import ZscHeader, read_zsc, token_checksum, write_zsc
from .codebook import CodebookStore, ReducedCodebook, check_codebook_size, check_kmeans
from .coders import FixedLengthCoder, ModelCoder, TokenCoder
from .loading import AmusedParts
from .schedule import DEFAULT_PASSES
from .token_model import MaskedTokenModel
from .usage import USAGE_IMAGES_VARIABLE, UsageCounter
from .vq import VQTokenizer

CODERS = ("fixed", "model")
StepProgress = Callable[[float], None]


def codebook_cache_dir() -> Path:
    return registry.CACHE_DIR / "compression" / "codebooks"


@dataclass(frozen=True)
class Encoded:
    data: bytes  # the complete .zsc file
    header: ZscHeader
    tokens: np.ndarray  # (h, w) cluster indices
    payload_bytes: int
    ideal_bits: float | None

    @property
    def header_bytes(self) -> int:
        return len(self.data) - self.payload_bytes


@dataclass(frozen=True)
class DecodedTokens:
    header: ZscHeader
    tokens: np.ndarray
    codebook: ReducedCodebook


class TokenCodec:
    """compress(image) -> Encoded; decode_tokens(bytes); render(tokens) -> image."""

    def __init__(self, parts: AmusedParts, cache_dir: Path | None = None):
        self.parts = parts
        self.vq = VQTokenizer(parts.vqvae, parts.device.torch_device)
        cache_dir = cache_dir or codebook_cache_dir()
        self.codebooks = CodebookStore(self.vq.code_vectors, parts.fingerprint.hex(), cache_dir)
        self.usage = UsageCounter(
            self.vq,
            lambda: self.codebooks.get(parts.codebook_size),
            parts.fingerprint.hex(),
            cache_dir,
        )
        self.model = MaskedTokenModel(parts, self.vq.factor)

    def coder(self, name: str, passes: int = DEFAULT_PASSES) -> TokenCoder:
        if name == "fixed":
            return FixedLengthCoder()
        if name == "model":
            return ModelCoder(self.model, passes)
        raise InputError(f"Unknown coder {name!r}; choose one of {', '.join(CODERS)}.")

    def codebook(self, k: int, kmeans: str = "plain") -> ReducedCodebook:
        """The K-centroid codebook: plain K-means, or weighted by code usage on photos."""
        check_codebook_size(k, self.parts.codebook_size)
        if check_kmeans(kmeans) == "plain" or k >= self.parts.codebook_size:
            return self.codebooks.get(k)
        return self.codebooks.get(k, self.usage.get())

    def _usage_fingerprint(self, k: int, kmeans: str) -> bytes:
        if kmeans == "plain" or k >= self.parts.codebook_size:
            return b""
        return self.usage.get().fingerprint

    def compress(
        self,
        image: np.ndarray,
        k: int,
        coder: str,
        progress: StepProgress | None = None,
        kmeans: str = "plain",
    ) -> Encoded:
        codebook = self.codebook(k, kmeans)
        usage = self._usage_fingerprint(k, kmeans)
        tokens = self.vq.encode(image, codebook)
        token_coder = self.coder(coder)
        coded = token_coder.encode(tokens, codebook, progress)
        header = ZscHeader(
            width=image.shape[1],
            height=image.shape[0],
            codebook_size=k,
            coder=coder,
            model_id=self.parts.model_id,
            model_fingerprint=self.parts.fingerprint,
            codebook_id=codebook.identity,
            checksum=token_checksum(tokens),
            passes=token_coder.passes,
            prob_device=self.model.device_kind if coder == "model" else "",
            kmeans="usage" if usage else "plain",
            usage_fingerprint=usage,
        )
        data = write_zsc(header, coded.payload)
        return Encoded(data, header, tokens, len(coded.payload), coded.ideal_bits)

    def decode_tokens(self, data: bytes, progress: StepProgress | None = None) -> DecodedTokens:
        header, payload = read_zsc(data)
        self._check_model(header)
        shape = self.vq.grid_shape(header.height, header.width)
        coder = self.coder(header.coder, header.passes)
        coder.check_payload(payload, shape, header.codebook_size)  # before any K-means
        codebook = self._codebook_of(header)
        if codebook.identity != header.codebook_id:
            raise InputError(
                f"The K={header.codebook_size} codebook computed here differs from the one the "
                "file was encoded with (a different K-means result). Decode it on the machine "
                "that encoded it, or copy its codebook cache over."
            )
        tokens = coder.decode(payload, shape, codebook, progress)
        if token_checksum(tokens) != header.checksum:
            raise InputError(self._checksum_message(header))
        return DecodedTokens(header, tokens, codebook)

    def _codebook_of(self, header: ZscHeader) -> ReducedCodebook:
        """The codebook a file was encoded with: plain K-means, or usage-weighted K-means from
        the usage counts the file names (found in the cache, or counted again here)."""
        k = header.codebook_size
        if header.kmeans == "plain":
            return self.codebook(k)
        check_codebook_size(k, self.parts.codebook_size)
        fingerprint = header.usage_fingerprint
        usage = self.codebooks.cached_usage(k, fingerprint)
        if usage is None:
            usage = self.usage.get()
            if usage.fingerprint != fingerprint:
                raise InputError(
                    f"This file's K={k} codebook comes from usage-weighted K-means with code "
                    f"usage counted on other photos (usage {fingerprint.hex()}) than here "
                    f"({usage.source}: usage {usage.fingerprint.hex()}). Set "
                    f"{USAGE_IMAGES_VARIABLE} to the folder it was counted on, or copy the "
                    "encoder's codebook cache over."
                )
        return self.codebooks.get(k, usage)

    def render(
        self, tokens: np.ndarray, codebook: ReducedCodebook, size: tuple[int, int]
    ) -> np.ndarray:
        """The image of a token grid, cropped to (height, width)."""
        return self.vq.decode(tokens, codebook, size)

    def _check_model(self, header: ZscHeader) -> None:
        if header.model_fingerprint != self.parts.fingerprint:
            raise InputError(
                f"This file was made with model {header.model_id} (weights "
                f"{header.model_fingerprint.hex()}); the loaded model is {self.parts.model_id} "
                f"(weights {self.parts.fingerprint.hex()}). Load the weights it was made with "
                "(ZSS_MODEL_COMPRESSION_AMUSED=/path/to/them)."
            )
        if header.codebook_size > self.parts.codebook_size:
            raise InputError(
                f"The file uses K={header.codebook_size}, larger than this model's codebook."
            )

    def _checksum_message(self, header: ZscHeader) -> str:
        message = "The decoded tokens do not match the file's checksum, so no image is shown."
        if header.coder != "model":
            return message + " The file is corrupt."
        here = self.model.device_kind
        if header.prob_device and header.prob_device != here:
            return (
                f"{message} The file's probabilities were computed on {header.prob_device} and "
                f"this run computes them on {here}; range decoding needs bit-identical "
                f"probabilities. Decode it with --device {header.prob_device}, or compress with "
                "the fixed coder for files that decode anywhere."
            )
        return (
            f"{message} Either the file is corrupt, or this machine's {here} kernels compute "
            "the transformer's probabilities differently from the encoder's; the fixed coder "
            "makes files that decode anywhere."
        )
