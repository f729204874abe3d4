"""kNN regression of speech features (kNN-VC): each query frame becomes the mean of its k
nearest matching-set frames under cosine distance."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import InputError

if TYPE_CHECKING:
    import torch

DEFAULT_K = 4
QUERY_BLOCK = 2048  # rows of the similarity matrix held at once (memory, not results)


def knn_average(
    queries: torch.Tensor, matching_set: torch.Tensor, k: int = DEFAULT_K
) -> torch.Tensor:
    """(n, d) queries, (m, d) matching set -> (n, d): mean of each query's k nearest frames."""
    if queries.ndim != 2 or matching_set.ndim != 2 or queries.shape[1] != matching_set.shape[1]:
        raise InputError(
            f"Feature shapes {tuple(queries.shape)} and {tuple(matching_set.shape)} do not match."
        )
    if not 1 <= k <= matching_set.shape[0]:
        raise InputError(
            f"k must be between 1 and the {matching_set.shape[0]} frames of the matching set."
        )
    import torch
    import torch.nn.functional as F

    keys = F.normalize(matching_set.float(), dim=-1)
    values = matching_set.float()
    out = []
    for block in queries.float().split(QUERY_BLOCK):
        similarity = F.normalize(block, dim=-1) @ keys.T
        nearest = similarity.topk(k, dim=-1).indices
        out.append(values[nearest].mean(dim=1))
    return torch.cat(out)
