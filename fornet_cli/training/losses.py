"""The FoR-Net loss: ``L = CE + w_dice * Dice + w_sel * L_sel`` (docs/MODEL.md section 1), plus optional OHEM.

Shapes: logits B x K x H x W, labels B x H x W (train ids, 255 = ignore), importance logit z B x 1 x h x w.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ..errors import ConfigError

IGNORE = 255


@dataclass(frozen=True)
class LossConfig:
    ce_weight: float = 1.0
    dice_weight: float = 1.0
    selector_weight: float = 0.5
    ohem: bool = False  # online hard example mining for the CE term (ours, off in the paper recipe)
    ohem_thresh: float = 0.7  # keep pixels whose true-class probability is below this ...
    ohem_min_kept: int = 100_000  # ... but at least this many per batch
    ignore_index: int = IGNORE

    def __post_init__(self) -> None:
        if min(self.ce_weight, self.dice_weight, self.selector_weight) < 0:
            raise ConfigError("Loss weights must not be negative (0 turns a term off).")
        if not 0.0 < self.ohem_thresh <= 1.0 or self.ohem_min_kept < 1:
            raise ConfigError(
                f"OHEM needs a threshold in (0, 1] and at least 1 kept pixel; got ohem_thresh={self.ohem_thresh}, "
                f"ohem_min_kept={self.ohem_min_kept}."
            )


class LossTerms(NamedTuple):
    total: torch.Tensor
    ce: torch.Tensor
    dice: torch.Tensor
    selector: torch.Tensor


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE) -> torch.Tensor:
    """Summed over valid pixels / number of valid pixels (0 when the batch has none)."""
    per_pixel = F.cross_entropy(logits.float(), labels, ignore_index=ignore_index, reduction="none")
    valid = labels != ignore_index
    return per_pixel.sum() / valid.sum().clamp(min=1)


def ohem_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, thresh: float, min_kept: int, ignore_index: int = IGNORE
) -> torch.Tensor:
    """CE over the hard pixels only: true-class probability below ``thresh``, at least ``min_kept`` of them."""
    per_pixel = F.cross_entropy(logits.float(), labels, ignore_index=ignore_index, reduction="none").flatten()
    valid = (labels != ignore_index).flatten()
    losses = per_pixel[valid]
    if losses.numel() == 0:
        return per_pixel.sum() * 0.0
    # probability below thresh  <=>  loss above -log(thresh)
    hard = losses > -torch.log(torch.tensor(thresh, device=losses.device))
    if int(hard.sum()) < min(min_kept, losses.numel()):
        return losses.topk(min(min_kept, losses.numel())).values.mean()
    return losses[hard].mean()


def dice_loss(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE) -> torch.Tensor:
    """1 - mean over classes present in the labels of ``(2 * inter + 1) / (sum_p + sum_g + 1)``."""
    num_classes = logits.shape[1]
    valid = labels != ignore_index
    probs = logits.float().softmax(dim=1) * valid.unsqueeze(1)
    onehot = F.one_hot(labels.masked_fill(~valid, 0), num_classes).permute(0, 3, 1, 2).float() * valid.unsqueeze(1)
    inter = (probs * onehot).sum(dim=(0, 2, 3))
    sum_p = probs.sum(dim=(0, 2, 3))
    sum_g = onehot.sum(dim=(0, 2, 3))
    present = sum_g > 0
    if not bool(present.any()):
        return logits.sum() * 0.0
    dice = (2 * inter + 1) / (sum_p + sum_g + 1)
    return 1 - dice[present].mean()


def selector_target(labels: torch.Tensor, grid: tuple[int, int], ignore_index: int = IGNORE) -> tuple[torch.Tensor, torch.Tensor]:
    """The soft boundary target for the selector and its per-cell weight, both B x 1 x h x w.

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


def selector_loss(z: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE) -> torch.Tensor:
    """BCE-with-logits between z and the boundary target, averaged over cells that hold a valid pixel."""
    target, weight = selector_target(labels, tuple(z.shape[-2:]), ignore_index)
    bce = F.binary_cross_entropy_with_logits(z.float(), target, reduction="none")
    return (bce * weight).sum() / weight.sum().clamp(min=1)


class FornetLoss(torch.nn.Module):
    """The paper's training objective; each term's weight is a setting (0 switches a term off)."""

    def __init__(self, config: LossConfig = LossConfig()) -> None:
        super().__init__()
        self.config = config

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, z: torch.Tensor | None) -> LossTerms:
        c = self.config
        if c.ohem:
            ce = ohem_cross_entropy(logits, labels, c.ohem_thresh, c.ohem_min_kept, c.ignore_index)
        else:
            ce = cross_entropy(logits, labels, c.ignore_index)
        zero = logits.sum() * 0.0
        dice = dice_loss(logits, labels, c.ignore_index) if c.dice_weight else zero
        sel = selector_loss(z, labels, c.ignore_index) if (c.selector_weight and z is not None) else zero
        total = c.ce_weight * ce + c.dice_weight * dice + c.selector_weight * sel
        return LossTerms(total, ce.detach(), dice.detach(), sel.detach())
