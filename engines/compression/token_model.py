"""aMUSEd's masked transformer as a probability model of the tokens: given the tokens already
known (the rest masked), p(cluster) at chosen positions. Used by the range coder and for
restoring lost tokens."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from .codebook import ReducedCodebook
from .loading import AESTHETIC_SCORE, AmusedParts

UNKNOWN = -1


@contextmanager
def deterministic_kernels(device) -> Iterator[None]:
    """On CUDA: no TF32, no autotuning, the math attention kernel, so that the encoder and the
    decoder of a file compute bit-identical probabilities. CPU kernels already are."""
    import torch

    if device.type != "cuda":
        yield
        return
    from torch.nn.attention import SDPBackend, sdpa_kernel

    saved = (
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cuda.matmul.allow_tf32,
    )
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with sdpa_kernel(SDPBackend.MATH):
            yield
    finally:
        (
            torch.backends.cudnn.deterministic,
            torch.backends.cudnn.benchmark,
            torch.backends.cudnn.allow_tf32,
            torch.backends.cuda.matmul.allow_tf32,
        ) = saved


class MaskedTokenModel:
    """p(cluster | known tokens) from one transformer pass (batch of one, fp32).

    Known positions enter the transformer as their cluster's representative code, unknown ones
    as the mask token; the transformer's probabilities over the full codebook are summed over
    each cluster's member codes (float64 on the CPU)."""

    def __init__(self, parts: AmusedParts, vq_factor: int):
        self.parts = parts
        self.vq_factor = vq_factor
        self.device = parts.device.torch_device
        self.device_kind = self.device.type

    def probabilities(
        self, known: np.ndarray, codebook: ReducedCodebook, positions: np.ndarray
    ) -> np.ndarray:
        """(len(positions), K) float64 rows summing to 1, for flat `positions` of `known`
        ((h, w) cluster indices, UNKNOWN where not known)."""
        import torch

        parts = self.parts
        height, width = known.shape
        ids = np.where(
            known == UNKNOWN, parts.mask_id, codebook.representatives[np.maximum(known, 0)]
        )
        multiple = parts.grid_multiple
        ids = np.pad(
            ids,
            ((0, -height % multiple), (0, -width % multiple)),
            constant_values=parts.mask_id,
        )
        grid_h, grid_w = ids.shape
        micro_conds = torch.tensor(
            [[grid_w * self.vq_factor, grid_h * self.vq_factor, 0.0, 0.0, AESTHETIC_SCORE]],
            device=self.device,
        )
        with torch.no_grad(), deterministic_kernels(self.device):
            logits = parts.transformer(
                torch.from_numpy(ids)[None].to(self.device),
                encoder_hidden_states=parts.encoder_hidden_states,
                pooled_text_emb=parts.pooled_text_emb,
                micro_conds=micro_conds,
            )
        logits = logits[0, :, :height, :width].reshape(logits.shape[1], -1)
        index = torch.from_numpy(np.asarray(positions, dtype=np.int64)).to(self.device)
        chosen = logits[:, index].T.double().cpu()
        probs = torch.softmax(chosen, dim=-1).numpy()
        return cluster_sums(probs, codebook)


def cluster_sums(probs: np.ndarray, codebook: ReducedCodebook) -> np.ndarray:
    """Probabilities over codes (n, N) -> over clusters (n, K): each cluster's members summed,
    in a fixed order (sorted by cluster, then code)."""
    if codebook.size == probs.shape[1]:
        return probs
    order = np.argsort(codebook.labels, kind="stable")
    counts = np.bincount(codebook.labels, minlength=codebook.size)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    filled = counts > 0
    out = np.zeros((len(probs), codebook.size))
    out[:, filled] = np.add.reduceat(probs[:, order], starts[filled], axis=1)
    return out
