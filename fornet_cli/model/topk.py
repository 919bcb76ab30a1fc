"""Top-K selection of feature positions by importance, with a straight-through estimator.

Written with tensor operations only (no Python ``round`` on sizes) so that ONNX export with a dynamic
height and width keeps K proportional to the input size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import ConfigError


def normalize_ratios(ratios: float | Sequence[float], n_branches: int) -> tuple[float, ...]:
    """Validate ratios; a single number (or a one-element sequence) applies to every branch."""
    if isinstance(ratios, (int, float)):
        ratios = (float(ratios),) * n_branches
    ratios = tuple(float(r) for r in ratios)
    if len(ratios) == 1:  # `--topk 0` on the command line
        ratios *= n_branches
    if len(ratios) != n_branches:
        raise ConfigError(f"Expected {n_branches} Top-K ratios (one per branch), got {len(ratios)}: {ratios}.")
    bad = [r for r in ratios if not 0.0 <= r <= 1.0 or r != r]
    if bad:
        raise ConfigError(f"Top-K ratios must lie in [0, 1] (0 turns a branch off, 1 selects every position); got {bad}.")
    return ratios


def topk_counts(n: torch.Tensor, ratios: Sequence[float]) -> list[torch.Tensor]:
    """``K_i = min(n, max(1, round(r_i * n)))`` as 0-d tensors; ratio 0 gives K = 0 (branch off)."""
    counts = []
    for r in ratios:
        if r == 0.0:
            counts.append(torch.zeros((), dtype=torch.long, device=n.device))
            continue
        k = torch.round(n.to(torch.float64) * r).to(torch.long)
        counts.append(torch.clamp(torch.clamp(k, min=1), max=n))
    return counts


def topk_masks(scores: torch.Tensor, ratios: Sequence[float]) -> torch.Tensor:
    """Binary masks ``(B, len(ratios), h, w)`` holding each image's ``K_i`` highest-scoring positions.

    Positions are ranked once per image (a stable descending sort breaks ties by position), so every
    mask holds exactly ``K_i`` positions and masks with smaller K lie inside masks with larger K.
    """
    b, _, h, w = scores.shape
    flat = scores.detach().reshape(b, h * w).float()
    order = torch.argsort(flat, dim=1, descending=True, stable=True)
    positions = torch.arange(h * w, device=scores.device).expand(b, -1)
    rank = torch.empty_like(order).scatter_(1, order, positions)  # rank[p] = place of position p in the order
    # h * w as a tensor computed from the data, so that tracing exporters keep it dynamic.
    n = torch.ones_like(rank[0]).sum()
    counts = topk_counts(n, ratios)
    masks = torch.stack([rank < k for k in counts], dim=1)
    return masks.reshape(b, len(ratios), h, w).to(scores.dtype)


def straight_through(mask: torch.Tensor, importance: torch.Tensor) -> torch.Tensor:
    """``M + S - stopgrad(S)``: the hard mask forward, the gradient of S backward.

    Grouped as ``M + (S - stopgrad(S))`` so the forward value is exactly M (``(M + S) - S`` is not,
    in floating point).
    """
    return mask + (importance - importance.detach())
