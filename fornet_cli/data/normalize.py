"""Images as the models see them: ``(pixel / 255 - mean) / std``, ImageNet's mean and std by default.

One definition for training transforms, prediction, show-hardness, export verification and the weights
registry, so that every path feeds a model exactly what it was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported when needed: the weights registry reads these constants without it
    import torch

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def normalize(images: np.ndarray | torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 RGB ``H x W x 3`` (one image) or ``B x H x W x 3`` -> normalised float32 ``B x 3 x H x W``."""
    import torch

    x = torch.as_tensor(images)
    if x.ndim == 3:
        x = x[None]
    x = x.permute(0, 3, 1, 2).float().div_(255)
    m = torch.tensor(list(mean), dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(list(std), dtype=torch.float32).view(1, 3, 1, 1)
    return ((x - m) / s).contiguous()
