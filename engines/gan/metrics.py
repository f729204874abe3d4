"""What the result reports: CLIP text scores, CLIP-feature diversity, and intra-cluster LPIPS
(only where the `lpips` package and its AlexNet weights are already on this machine)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

Distance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
ALEXNET_WEIGHTS = "alexnet-owt-7be5be79.pth"


def text_score(features: torch.Tensor, text_feature: torch.Tensor) -> float:
    """Mean cosine similarity between unit image features and a text feature."""
    return float((features @ F.normalize(text_feature, dim=0)).mean())


def mean_pairwise_distance(features: torch.Tensor) -> float:
    """Mean (1 - cos) over distinct pairs of unit features: how varied the samples are in
    CLIP's eyes (0 when every sample looks the same)."""
    count = features.shape[0]
    if count < 2:
        return 0.0
    cosine = features @ features.T
    upper = torch.triu_indices(count, count, offset=1, device=features.device)
    return float((1 - cosine[upper[0], upper[1]]).mean())


def direction_alignment(
    source_features: torch.Tensor, target_features: torch.Tensor, direction: torch.Tensor
) -> float:
    """Mean cos between per-sample image changes and the source-to-target text direction."""
    change = F.normalize(target_features - source_features, dim=-1)
    return float((change @ F.normalize(direction, dim=0)).mean())


def intra_cluster_distance(images: torch.Tensor, clusters: int, distance: Distance) -> float:
    """Intra-cluster diversity (Ojha et al. 2021), with the first `clusters` samples as centres:
    every other sample joins its nearest centre, then the mean pairwise distance inside each
    cluster is averaged over clusters with at least two members."""
    centres = images[:clusters]
    members: list[list[int]] = [[i] for i in range(clusters)]
    for index in range(clusters, images.shape[0]):
        sample = images[index : index + 1].expand_as(centres)
        members[int(distance(sample, centres).argmin())].append(index)
    scores = []
    for group in members:
        if len(group) < 2:
            continue
        pairs = torch.triu_indices(len(group), len(group), offset=1)
        a = images[[group[i] for i in pairs[0].tolist()]]
        b = images[[group[j] for j in pairs[1].tolist()]]
        scores.append(float(distance(a, b).mean()))
    return sum(scores) / len(scores) if scores else 0.0


def local_lpips(device: torch.device) -> Distance | None:
    """LPIPS (AlexNet) if it can be built without downloading anything, else None."""
    if importlib.util.find_spec("lpips") is None:
        return None
    weights = Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_WEIGHTS
    if not weights.is_file():
        return None
    import lpips

    model = lpips.LPIPS(net="alex", verbose=False).to(device).eval()

    @torch.no_grad()
    def distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return model(a, b).flatten()

    return distance
