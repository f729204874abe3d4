"""The semantic-variation method (SVL, ICCV 2023): variations of the target text in CLIP space,
then a directional moment loss with EWC and relation consistency. The paper released no code;
where it leaves a choice open, the choice made here is named in the docstring."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .nada import safe_unit


@dataclass
class Variations:
    """Stage 1's output for one CLIP model."""

    vectors: torch.Tensor  # (K, D): v_i = E_T(t_trg) + eps * z_i / |z_i|
    target_cosine: float  # mean cos(v_i, E_T(t_trg))
    pairwise_abs_cosine: float  # mean_{i<j} |cos(z_i, z_j)|
    initial_pairwise_abs_cosine: float


def pairwise_abs_cosine(z: torch.Tensor) -> torch.Tensor:
    """Mean |cos| over distinct pairs of rows (0 for a single row)."""
    if z.shape[0] < 2:
        return z.new_zeros(())
    unit = F.normalize(z, dim=-1)
    cosine = unit @ unit.T
    upper = torch.triu_indices(z.shape[0], z.shape[0], offset=1, device=z.device)
    return cosine[upper[0], upper[1]].abs().mean()


def semantic_variations(
    target_feature: torch.Tensor,
    count: int = 6,
    lambda_div: float = 1.0,
    iterations: int = 2000,
    lr: float = 0.01,
    seed: int = 0,
) -> Variations:
    """Stage 1: learn K free vectors z_i so that v_i stays close to the target text feature
    (L_cons = mean 1 - cos(E_T, v_i)) while the z_i point different ways (L_div = mean |cos|).

    eps = |E_T(t_trg)|, so every variation moves as far as the feature is long. Adam with
    lr 0.01 on the z_i and their N(0, I) start are our choices (the paper gives neither).
    """
    target = target_feature.detach().float()
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(count, target.numel(), generator=generator).to(target.device)
    initial = float(pairwise_abs_cosine(z))
    z.requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)
    eps = target.norm()
    for _ in range(iterations):
        vectors = target + eps * F.normalize(z, dim=-1)
        consistency = (1 - F.cosine_similarity(vectors, target[None], dim=-1)).mean()
        loss = consistency + lambda_div * pairwise_abs_cosine(z)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        vectors = target + eps * F.normalize(z, dim=-1)
        return Variations(
            vectors=vectors,
            target_cosine=float(F.cosine_similarity(vectors, target[None], dim=-1).mean()),
            pairwise_abs_cosine=float(pairwise_abs_cosine(z)),
            initial_pairwise_abs_cosine=initial,
        )


def text_directions(
    variations: torch.Tensor,
    source_feature: torch.Tensor,
    target_feature: torch.Tensor | None = None,
) -> torch.Tensor:
    """Unit directions v_i - E_T(t_src), plus the plain target direction when given: (K+1, D)."""
    rows = [variations]
    if target_feature is not None:
        rows.append(target_feature[None])
    return F.normalize(torch.cat(rows) - source_feature[None], dim=-1)


def covariance(rows: torch.Tensor) -> torch.Tensor:
    """Covariance of the rows, divided by the row count (our normalisation)."""
    centred = rows - rows.mean(dim=0, keepdim=True)
    return centred.T @ centred / rows.shape[0]


def directional_moment_loss(
    image_dirs: torch.Tensor, text_dirs: torch.Tensor, lambda_cov: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Match the first two moments of image and text directions.

    Returns (mean term, weighted covariance term): the cosine distance between the mean
    directions, and lambda_cov * ||Cov_I - Cov_T||_F / D. Both inputs hold unit rows.

    Dividing the Frobenius norm by the feature size D is our normalisation: with it the paper's
    lambda_cov = 1e3 puts the covariance term on the scale of the mean term (about 0.6 against 1
    at the start with ViT-B/32); the plain norm would outweigh the mean term 300 to 1.
    """
    mean_term = 1 - safe_unit(image_dirs.mean(dim=0)) @ F.normalize(text_dirs.mean(dim=0), dim=0)
    difference = covariance(image_dirs) - covariance(text_dirs)
    cov_term = torch.linalg.matrix_norm(difference) / image_dirs.shape[-1]
    return mean_term, lambda_cov * cov_term


def squared_score_gradients(
    scores: torch.Tensor, parameters: Sequence[torch.nn.Parameter]
) -> list[torch.Tensor]:
    """The sum over samples of the squared gradient of each sample's score, sum_n (d s_n /
    d theta)^2: the empirical diagonal Fisher F = 1/B sum_n (d s_n / d theta)^2 times B.

    `scores` holds one score per sample, all from one forward pass; each sample's gradient is
    its own backward pass through that graph (the generator and CLIP treat samples
    independently, so this equals a forward and backward per sample). The square of the
    gradient of the batch-mean score would be smaller, down to 1/B of this when the samples'
    gradients are unrelated. Computed once, before adapting, over one batch's micro-batches."""
    parameters = list(parameters)
    total = [torch.zeros_like(p) for p in parameters]
    count = scores.numel()
    for index, score in enumerate(scores.reshape(-1)):
        grads = torch.autograd.grad(
            score, parameters, retain_graph=index < count - 1, allow_unused=True
        )
        for into, grad in zip(total, grads, strict=True):
            if grad is not None:
                into.add_(grad.detach().pow(2))
    return total


def ewc_penalty(
    parameters: Sequence[torch.Tensor],
    anchors: Sequence[torch.Tensor],
    fisher: Sequence[torch.Tensor],
) -> torch.Tensor:
    """sum_l F_l (theta_trg - theta_src)^2."""
    total = parameters[0].new_zeros(())
    for theta, anchor, weight in zip(parameters, anchors, fisher, strict=True):
        total = total + (weight * (theta - anchor).pow(2)).sum()
    return total


def relation_consistency(
    source_features: torch.Tensor, target_features: torch.Tensor
) -> torch.Tensor:
    """KL(P_src || P_trg) between row-softmaxed similarity matrices of a batch.

    As in cross-domain correspondence (Ojha et al. 2021), a sample's similarity to itself is left
    out, so the rows describe how each image relates to the others; needs a batch of 3 or more
    to say anything (with 2 each row is a single certain entry).
    """
    count = source_features.shape[0]
    if count < 2:
        return source_features.new_zeros(())
    off_diagonal = ~torch.eye(count, dtype=torch.bool, device=source_features.device)

    def log_rows(features: torch.Tensor) -> torch.Tensor:
        similarity = features @ features.T
        return F.log_softmax(similarity[off_diagonal].view(count, count - 1), dim=-1)

    log_p, log_q = log_rows(source_features), log_rows(target_features)
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1).mean()
