"""Parameter and MAC counts.

MACs are counted with ``torch.utils.flop_counter`` on the meta device: shapes are propagated but nothing
is computed, so even the paper model at 1024x2048 is counted in about a second.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from . import create_model, get_entry


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, height: int, width: int, batch: int = 1) -> int:
    """Multiply-accumulates of one forward pass in eval mode (flop_counter's FLOPs / 2).

    A model that is not on the meta device is copied there first (the copy holds no data).
    """
    first = next(model.parameters(), None)
    meta = model if first is not None and first.device.type == "meta" else copy.deepcopy(model).to("meta")
    was_training = meta.training
    meta.eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            meta(torch.empty(batch, 3, height, width, device="meta"))
    finally:
        meta.train(was_training)
    return counter.get_total_flops() // 2


@dataclass(frozen=True)
class ModelSummary:
    name: str
    backbone: str
    output_stride: int  # of the backbone
    head_stride: int  # of the importance grid the selector ranks
    channels: int
    parameters: int
    gmacs: float | None
    size: tuple[int, int]
    backbone_weights: str | None
    paper: bool
    description: str


def summarize_model(name: str, height: int = 1024, width: int = 2048, num_classes: int = 19, macs: bool = True) -> ModelSummary:
    """Parameters and GMACs of a registered variant, computed on the meta device."""
    entry = get_entry(name)
    with torch.device("meta"):
        model = create_model(name, num_classes=num_classes)
    return ModelSummary(
        name=name,
        backbone=entry.config.backbone,
        output_stride=entry.config.output_stride,
        head_stride=model.stride,
        channels=entry.config.channels,
        parameters=count_parameters(model),
        gmacs=count_macs(model, height, width) / 1e9 if macs else None,
        size=(height, width),
        backbone_weights=entry.backbone_weights,
        paper=entry.config.paper,
        description=entry.config.description,
    )
