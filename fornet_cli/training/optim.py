"""Optimiser, learning-rate schedule and mixed precision of a training run."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .config import TrainConfig


def param_groups(model: nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
    """Backbone / head x decay / no decay: biases and norm weights (1-d tensors) get no weight decay."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        key = (name.startswith("backbone."), p.ndim <= 1)
        groups.setdefault(key, []).append(p)
    out = []
    for (is_backbone, no_decay), params in sorted(groups.items()):
        lr = config.lr * (1.0 if is_backbone else config.head_lr_mult)
        out.append({"params": params, "lr": lr, "initial_lr": lr, "weight_decay": 0.0 if no_decay else config.weight_decay})
    return out


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    groups = param_groups(model, config)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr)
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)


def lr_factor(step: int, config: TrainConfig) -> float:
    """Linear warm-up from ``warmup_start`` to 1, then poly decay ``(1 - t) ** power`` to 0 at ``iters``."""
    if step < config.warmup_iters:
        return config.warmup_start + (1 - config.warmup_start) * step / config.warmup_iters
    t = min(step, config.iters) / config.iters
    return (1 - t) ** config.poly_power


def amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """Autocast dtype: None on the CPU or with amp off; bf16 where supported (auto), else fp16."""
    if device.type != "cuda" or config.amp == "off":
        return None
    if config.amp == "fp16":
        return torch.float16
    if config.amp == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16
