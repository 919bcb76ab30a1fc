"""BatchNorm statistics for a model that has never seen data (benchmarks, tests, exports of random weights).

A freshly initialised network in eval mode normalises with running mean 0 and variance 1. With
torchvision's MobileNetV3 initialisation the activations then shrink by orders of magnitude per stage (the
stride-32 feature of ``fornet_mbv3`` has a standard deviation of about 1e-9), so the selector's scores are
equal to float precision and the Top-K masks are decided by rounding noise: two runtimes then pick
different cells. A few forward passes in training mode give every BatchNorm the statistics of its input,
as any trained model has, and the random model behaves like a model.
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def calibrate_batchnorm(model: nn.Module, size: tuple[int, int] = (128, 256), batches: int = 2, seed: int = 0) -> nn.Module:
    """Set every BatchNorm's running statistics from ``batches`` random images; return the model in eval mode."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    model.train()
    for _ in range(batches):
        model(torch.randn(2, 3, *size, generator=generator).to(device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    return model.eval()
