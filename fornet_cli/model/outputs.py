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
