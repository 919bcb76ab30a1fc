"""What a segmentation model returns: FoR-Net's full output, and the logits inside any model's output."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from ..errors import ConfigError


class FornetOutput(NamedTuple):
    """What training and show-hardness need: logits at input size, importance logit and masks at the grid."""

    logits: torch.Tensor  # B x num_classes x H x W
    importance: torch.Tensor  # B x 1 x h x w, the logit z (float32)
    masks: torch.Tensor  # B x n_branches x h x w, hard 0/1 Top-K masks
    # B x num_classes x h x w: the auxiliary classifier's logits on the head's feature before the branches
    # (variants with ``aux_classifier``; None otherwise). Training supervises it and may teach the selector
    # where it errs.
    aux: torch.Tensor | None = None
    # B x C x 1 x 1: the global average of the head's feature F, what the global-context term sees. Focus
    # inference hands it, with the Top-K thresholds, to full-resolution tiles (``FocusContext``).
    pooled: torch.Tensor | None = None


class FocusContext(NamedTuple):
    """What a FoR-Net tile takes from the whole image in focus inference (docs/FOCUS.md), so that it does not
    see a different world than the image: the global-context input and the Top-K thresholds.

    pooled: B x C x 1 x 1, the image's ``GAP(F)`` (``FornetOutput.pooled`` of the coarse pass).
    thresholds: B x n_branches, the importance logit a position needs to be in each Top-K mask (the lowest
        selected logit of the image's mask; -inf selects every position, +inf none).
    """

    pooled: torch.Tensor
    thresholds: torch.Tensor


def mask_thresholds(importance: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """B x n_branches: the lowest importance logit inside each mask (+inf for an empty mask, -inf for a full
    one, so that the thresholds select all or nothing at any grid size)."""
    z = importance.flatten(1).float()[:, None, :]  # B x 1 x n
    m = masks.flatten(2) > 0.5  # B x R x n
    lowest = torch.where(m, z, torch.full_like(z, float("inf"))).amin(dim=2)
    full = m.all(dim=2)
    return torch.where(full, torch.full_like(lowest, float("-inf")), lowest)


def logits_of(output: Any) -> torch.Tensor:
    """The logits in a model's output: a tensor, ``{"out": ...}``, ``FornetOutput`` or a tuple."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, dict):
        if "out" in output:
            return output["out"]
        raise ConfigError(f"The model returned a dict without 'out' (keys: {sorted(output)}); cannot find logits.")
    if hasattr(output, "logits"):
        return output.logits
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise ConfigError(f"Cannot find logits in a model output of type {type(output).__name__}.")
