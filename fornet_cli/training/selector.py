"""What the selector learns: the paper's ground-truth boundary band, or where the model actually errs (ours).

Targets live on the selector's grid (B x 1 x h x w) with a per-cell weight (0 for cells without a valid
pixel):

* ``boundary`` (the paper, docs/MODEL.md): the soft band around ground-truth class boundaries.
* ``error``: the share of each cell's valid pixels that the model's final prediction gets wrong (detached:
  the selector learns where the model errs, it does not make the prediction worse to be right).
* ``aux_error``: the same for the auxiliary prediction made before the branches (``aux_classifier``): where
  the model errs without the refinement the branches bring, i.e. where refining pays.

and two ways to fit them:

* ``bce``: binary cross-entropy with the (soft) target per cell, averaged over weighted cells.
* ``rank``: the Top-K region should hold as many errors as possible, which is a question of order, not of
  calibration: per image, the cross-entropy between the target's distribution over cells (its share of the
  image's error mass) and ``softmax(z)`` (ListNet). Images with no target mass are skipped.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SELECTOR_TARGETS: tuple[str, ...] = ("boundary", "error", "aux_error")
SELECTOR_LOSSES: tuple[str, ...] = ("bce", "rank")


def boundary_target(labels: torch.Tensor, grid: tuple[int, int], ignore_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's soft boundary target and its per-cell weight, both B x 1 x h x w.

    A pixel is a boundary pixel when it is valid and its 3x3 neighbourhood (valid pixels only) holds more
    than one class. The boundary map is max-pooled onto the grid (value 1), then widened twice with a 3x3
    max-pool, ring k getting 0.5**k (0.5, 0.25). Cells without a valid pixel get weight 0.
    """
    lab = labels.unsqueeze(1).float()
    valid = labels.unsqueeze(1) != ignore_index
    big = float(2**20)
    hi = F.max_pool2d(torch.where(valid, lab, torch.full_like(lab, -big)), 3, stride=1, padding=1)
    lo = -F.max_pool2d(torch.where(valid, -lab, torch.full_like(lab, -big)), 3, stride=1, padding=1)
    boundary = (valid & (hi != lo)).float()
    ring0 = F.adaptive_max_pool2d(boundary, grid)
    ring1 = F.max_pool2d(ring0, 3, stride=1, padding=1)
    ring2 = F.max_pool2d(ring1, 3, stride=1, padding=1)
    target = torch.maximum(ring0, torch.maximum(0.5 * ring1, 0.25 * ring2))
    weight = F.adaptive_max_pool2d(valid.float(), grid)
    return target, weight


def error_target(
    logits: torch.Tensor, labels: torch.Tensor, grid: tuple[int, int], ignore_index: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per cell, the share of its valid pixels that ``logits`` (B x K x h' x w', any size) predict wrongly.

    Logits at another size than the labels are upsampled bilinearly first, as the model's own are.
    """
    logits = logits.detach()
    if logits.shape[-2:] != labels.shape[-2:]:
        logits = F.interpolate(logits.float(), size=labels.shape[-2:], mode="bilinear", align_corners=False)
    valid = (labels != ignore_index).unsqueeze(1).float()
    wrong = (logits.argmax(dim=1) != labels).unsqueeze(1).float() * valid
    valid_share = F.adaptive_avg_pool2d(valid, grid)
    share = F.adaptive_avg_pool2d(wrong, grid) / valid_share.clamp(min=1e-6)
    return share, (valid_share > 0).float()


def fit(z: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, kind: str) -> torch.Tensor:
    """The selector loss of logit ``z`` against ``target`` (both B x 1 x h x w), see the module docstring."""
    z = z.float()
    if kind == "bce":
        bce = F.binary_cross_entropy_with_logits(z, target, reduction="none")
        return (bce * weight).sum() / weight.sum().clamp(min=1)
    mass = (target * weight).flatten(1)
    total = mass.sum(dim=1)
    keep = total > 0
    if not bool(keep.any()):
        return z.sum() * 0.0
    p = mass[keep] / total[keep, None]
    scores = z.flatten(1)[keep].masked_fill(weight.flatten(1)[keep] == 0, float("-inf"))
    log_q = torch.log_softmax(scores, dim=1).masked_fill(p == 0, 0.0)  # 0 * -inf would be NaN
    return -(p * log_q).sum(dim=1).mean()
