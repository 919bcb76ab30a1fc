"""Validation during training: the evaluation engine on the validation split, sharded over ranks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from .. import distributed as dist
from ..fmt import none_if_nan


def validate(
    model: nn.Module, val_data: Dataset, device: torch.device, info: dist.DistInfo, class_names: Sequence[str]
) -> dict[str, Any]:
    """mIoU and hard-region scores on the validation split (in the label space of ``class_names``: Cityscapes'
    for its 19 training classes); ranks evaluate disjoint shards and sum counts."""
    from ..evaluation.evaluate import evaluate_model
    from ..evaluation.space import space_for

    indices = list(range(info.rank, len(val_data), info.world_size))  # type: ignore[arg-type]
    gather = dist.all_gather_object if info.enabled else None
    result = evaluate_model(model, torch.utils.data.Subset(val_data, indices), gather=gather,
                            space=space_for(list(class_names)))
    return val_summary(result)


def val_summary(result: Any) -> dict[str, Any]:
    """The numbers a training log keeps from an evaluation."""
    scores, hard = result.scores, result.hard
    out: dict[str, Any] = {"miou": _num(scores.miou), "pixel_acc": _num(scores.pixel_accuracy)}
    if hard is not None:
        out["boundary_iou"] = _num(hard.boundary_miou)
        out["thin_miou"] = _num(hard.thin_miou)  # None outside Cityscapes' label set
    return out


def _num(v: Any) -> float | None:
    """A score for the training log: 5 decimals, None when undefined."""
    v = none_if_nan(v)
    return None if v is None else round(v, 5)
