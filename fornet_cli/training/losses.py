"""The FoR-Net loss: ``L = CE + w_dice * Dice + w_sel * L_sel`` (docs/MODEL.md section 1), plus optional OHEM
and, for our variants, an auxiliary classifier's cross-entropy and other selector targets (``selector.py``).

Shapes: logits B x K x H x W, labels B x H x W (train ids, 255 = ignore), importance logit z B x 1 x h x w.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from . import selector

IGNORE = 255


@dataclass(frozen=True)
class LossConfig:
    ce_weight: float = 1.0
    dice_weight: float = 1.0
    selector_weight: float = 0.5
    ohem: bool = False  # online hard example mining for the CE term (ours, off in the paper recipe)
    ohem_thresh: float = 0.7  # keep pixels whose true-class probability is below this ...
    ohem_min_kept: int = 100_000  # ... but at least this many per batch
    # What the selector learns and how (selector.py): the paper's boundary band with BCE, or (ours) where the
    # final or the auxiliary prediction errs, fitted with BCE or as a ranking. "auto": the auxiliary
    # prediction's errors, ranked, for a model with an auxiliary classifier (our v2 variants, docs/STUDY.md);
    # the paper's band with BCE for every other model (fornet_r101 among them).
    selector_target: str = "auto"
    selector_fit: str = "auto"
    aux_weight: float = 0.4  # cross-entropy of the auxiliary classifier (only models that have one)
    ignore_index: int = IGNORE

    def __post_init__(self) -> None:
        if min(self.ce_weight, self.dice_weight, self.selector_weight, self.aux_weight) < 0:
            raise ConfigError("Loss weights must not be negative (0 turns a term off).")
        if (self.selector_target not in ("auto", *selector.SELECTOR_TARGETS)
                or self.selector_fit not in ("auto", *selector.SELECTOR_LOSSES)):
            raise ConfigError(
                f"selector_target must be auto or one of {', '.join(selector.SELECTOR_TARGETS)} and selector_fit "
                f"auto or one of {', '.join(selector.SELECTOR_LOSSES)}; got {self.selector_target!r} and {self.selector_fit!r}."
            )
        if not 0.0 < self.ohem_thresh <= 1.0 or self.ohem_min_kept < 1:
            raise ConfigError(
                f"OHEM needs a threshold in (0, 1] and at least 1 kept pixel; got ohem_thresh={self.ohem_thresh}, "
                f"ohem_min_kept={self.ohem_min_kept}."
            )


def resolve_selector(config: LossConfig, has_aux: bool) -> tuple[str, str]:
    """The selector's (target, fit) once "auto" is decided by the model (see LossConfig)."""
    target = config.selector_target
    if target == "auto":
        target = "aux_error" if has_aux else "boundary"
    fit = config.selector_fit
    if fit == "auto":
        fit = "bce" if target == "boundary" else "rank"
    return target, fit


class LossTerms(NamedTuple):
    total: torch.Tensor
    ce: torch.Tensor
    dice: torch.Tensor
    selector: torch.Tensor
    aux: torch.Tensor


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


def selector_loss(
    z: torch.Tensor,
    labels: torch.Tensor,
    ignore_index: int = IGNORE,
    *,
    target: str = "boundary",
    fit: str = "bce",
    logits: torch.Tensor | None = None,
    aux: torch.Tensor | None = None,
) -> torch.Tensor:
    """The selector's loss against ``target`` (``selector.py``): the paper's BCE with the boundary band by
    default; ``error`` needs the model's ``logits``, ``aux_error`` its auxiliary logits."""
    grid = tuple(z.shape[-2:])
    if target == "boundary":
        goal, weight = selector.boundary_target(labels, grid, ignore_index)  # type: ignore[arg-type]
    else:
        source = logits if target == "error" else aux
        if source is None:
            what = "logits" if target == "error" else "auxiliary logits (a variant with aux_classifier)"
            raise ConfigError(f"The selector target {target!r} needs the model's {what}.")
        goal, weight = selector.error_target(source, labels, grid, ignore_index)  # type: ignore[arg-type]
    return selector.fit(z, goal, weight, fit)


class FornetLoss(torch.nn.Module):
    """The paper's training objective; each term's weight is a setting (0 switches a term off)."""

    def __init__(self, config: LossConfig = LossConfig()) -> None:
        super().__init__()
        self.config = config

    def forward(
        self, logits: torch.Tensor, labels: torch.Tensor, z: torch.Tensor | None, aux: torch.Tensor | None = None
    ) -> LossTerms:
        c = self.config
        if c.ohem:
            ce = ohem_cross_entropy(logits, labels, c.ohem_thresh, c.ohem_min_kept, c.ignore_index)
        else:
            ce = cross_entropy(logits, labels, c.ignore_index)
        zero = logits.sum() * 0.0
        dice = dice_loss(logits, labels, c.ignore_index) if c.dice_weight else zero
        sel = zero
        if c.selector_weight and z is not None:
            target, fit = resolve_selector(c, has_aux=aux is not None)
            sel = selector_loss(z, labels, c.ignore_index, target=target, fit=fit, logits=logits, aux=aux)
        aux_ce = zero
        if c.aux_weight and aux is not None:
            up = F.interpolate(aux.float(), size=labels.shape[-2:], mode="bilinear", align_corners=False)
            aux_ce = cross_entropy(up, labels, c.ignore_index)
        total = c.ce_weight * ce + c.dice_weight * dice + c.selector_weight * sel + c.aux_weight * aux_ce
        return LossTerms(total, ce.detach(), dice.detach(), sel.detach(), aux_ce.detach())
