"""Lossless coders for a token grid, behind one interface. Both are exact: decode(encode(t)) == t.

- FixedLengthCoder: ceil(log2 K) bits per token (the paper's uniform model).
- ModelCoder: range coding (constriction) with the masked transformer's probabilities, the grid
  coded in a fixed number of groups, each conditioned on the groups before it.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .codebook import ReducedCodebook
from .schedule import DEFAULT_PASSES, coding_groups
from .token_model import UNKNOWN, MaskedTokenModel

StepProgress = Callable[[float], None]
UNIFORM_SHARE = 2.0**-6
"""Share of a uniform distribution mixed into the transformer's: a token the model wrongly
rules out costs at most log2(K) + 6 bits instead of up to the range coder's 24-bit floor;
a well-calibrated model loses under 0.023 bits a token to it."""


@dataclass(frozen=True)
class CodedTokens:
    payload: bytes
    ideal_bits: float | None = None  # sum of -log2 p(token) under the coder's own model


class TokenCoder(ABC):
    passes: int = 0

    @abstractmethod
    def encode(
        self, tokens: np.ndarray, codebook: ReducedCodebook, progress: StepProgress | None = None
    ) -> CodedTokens:
        """Code an (h, w) grid of cluster indices."""

    @abstractmethod
    def check_payload(self, payload: bytes, shape: tuple[int, int], k: int) -> None:
        """InputError unless `payload` can hold an (h, w) grid of K-cluster tokens: checked
        before any decoding work, whose cost follows the size the header claims."""

    @abstractmethod
    def decode(
        self,
        payload: bytes,
        shape: tuple[int, int],
        codebook: ReducedCodebook,
        progress: StepProgress | None = None,
    ) -> np.ndarray:
        """The (h, w) grid back; a payload of the wrong form raises InputError."""


class FixedLengthCoder(TokenCoder):
    def encode(self, tokens, codebook, progress=None) -> CodedTokens:
        bits = _bits_per_token(codebook.size)
        values = np.asarray(tokens, dtype=np.int64).reshape(-1)
        shifts = np.arange(bits - 1, -1, -1)
        bit_matrix = ((values[:, None] >> shifts[None, :]) & 1).astype(np.uint8)
        return CodedTokens(np.packbits(bit_matrix.reshape(-1)).tobytes())

    def check_payload(self, payload, shape, k) -> None:
        bits = _bits_per_token(k)
        count = shape[0] * shape[1]
        if len(payload) != -(-count * bits // 8):
            raise InputError(
                f"The .zsc payload has {len(payload)} bytes; {count} tokens at {bits} bits need "
                f"{-(-count * bits // 8)}. The file is truncated or corrupt."
            )

    def decode(self, payload, shape, codebook, progress=None) -> np.ndarray:
        bits = _bits_per_token(codebook.size)
        count = shape[0] * shape[1]
        self.check_payload(payload, shape, codebook.size)
        bit_array = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))[: count * bits]
        weights = 1 << np.arange(bits - 1, -1, -1)
        return (bit_array.reshape(count, bits).astype(np.int64) @ weights).reshape(shape)


class ModelCoder(TokenCoder):
    def __init__(self, model: MaskedTokenModel, passes: int = DEFAULT_PASSES):
        self.model = model
        self.passes = passes

    def coding_probabilities(
        self, known: np.ndarray, codebook: ReducedCodebook, positions: np.ndarray
    ) -> np.ndarray:
        """The distributions the range coder uses at `positions`: the transformer's over the
        K clusters, mixed with a little of the uniform one."""
        probs = self.model.probabilities(known, codebook, positions)
        return (1.0 - UNIFORM_SHARE) * probs + UNIFORM_SHARE / codebook.size

    def encode(self, tokens, codebook, progress=None) -> CodedTokens:
        import constriction

        tokens = np.asarray(tokens, dtype=np.int64)
        family = constriction.stream.model.Categorical(perfect=False)
        encoder = constriction.stream.queue.RangeEncoder()
        known = np.full(tokens.shape, UNKNOWN, dtype=np.int64)
        ideal_bits = 0.0
        groups = coding_groups(*tokens.shape, self.passes)
        for step, group in enumerate(groups):
            probs = self.coding_probabilities(known, codebook, group)
            symbols = tokens.reshape(-1)[group]
            encoder.encode(symbols.astype(np.int32), family, probs)
            ideal_bits -= float(np.log2(probs[np.arange(len(group)), symbols]).sum())
            known.reshape(-1)[group] = symbols
            if progress:
                progress((step + 1) / len(groups))
        words = encoder.get_compressed().astype("<u4")
        return CodedTokens(words.tobytes(), ideal_bits)

    def check_payload(self, payload, shape, k) -> None:
        if len(payload) % 4:
            raise InputError(
                "The .zsc payload is not a whole number of 32-bit words: the file is "
                "truncated or corrupt."
            )
        count = shape[0] * shape[1]
        least = min_model_payload_bytes(count, k)
        if len(payload) < least:
            raise InputError(
                f"The .zsc file claims {count} tokens ({shape[1]}x{shape[0]}) in {len(payload)} "
                f"bytes; the model coder needs at least {least} bytes for that many (each token "
                f"costs at least {min_bits_per_token(k):.4f} bits), so the file is truncated or "
                "its size is damaged."
            )

    def decode(self, payload, shape, codebook, progress=None) -> np.ndarray:
        import constriction

        self.check_payload(payload, shape, codebook.size)
        words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
        family = constriction.stream.model.Categorical(perfect=False)
        try:
            decoder = constriction.stream.queue.RangeDecoder(words)
        except Exception as err:  # constriction reports malformed data with several types
            raise InputError(f"The .zsc payload cannot be range-decoded: {err}.") from err
        known = np.full(shape, UNKNOWN, dtype=np.int64)
        groups = coding_groups(*shape, self.passes)
        for step, group in enumerate(groups):
            probs = self.coding_probabilities(known, codebook, group)
            try:
                symbols = decoder.decode(family, probs)
            except Exception as err:
                raise InputError(f"The .zsc payload cannot be range-decoded: {err}.") from err
            known.reshape(-1)[group] = np.asarray(symbols, dtype=np.int64)
            if progress:
                progress((step + 1) / len(groups))
        return known


def min_bits_per_token(k: int) -> float:
    """The fewest bits the model coder spends on one of K tokens: its probabilities are mixed
    with UNIFORM_SHARE of the uniform one, so none exceeds 1 - UNIFORM_SHARE * (K - 1) / K."""
    return -math.log2(1.0 - UNIFORM_SHARE * (k - 1) / k)


def min_model_payload_bytes(count: int, k: int) -> int:
    """A lower bound on the model coder's payload for `count` tokens: 90% of the fewest bits
    they can take (the range coder's 24-bit quantisation may round a probability up a
    little), less two 32-bit words of slack for the coder's state."""
    return max(0, math.floor(0.9 * count * min_bits_per_token(k) / 8) - 8)


def _bits_per_token(k: int) -> int:
    return max(1, (k - 1).bit_length())
