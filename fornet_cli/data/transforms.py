"""Training and evaluation transforms (``torchvision.transforms.v2``) for dict samples with an ``image``
(``tv_tensors.Image``) and a ``mask`` (``tv_tensors.Mask`` of train ids).

Geometric transforms move image and mask together; masks are always resized with nearest neighbour and padded
with 255 (ignore). The output image is float32, normalised; the output mask is int64, ready for the loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from ..errors import ConfigError
from .labels import IGNORE_INDEX
from .normalize import IMAGENET_MEAN, IMAGENET_STD


@dataclass(frozen=True)
class TransformSettings:
    """Augmentation settings; sizes are (height, width) in pixels."""

    crop_size: tuple[int, int] = (512, 1024)
    scale_range: tuple[float, float] = (0.5, 2.0)  # random rescale of the input, as a factor of its size
    hflip_prob: float = 0.5
    brightness: float = 0.25
    contrast: float = 0.25
    saturation: float = 0.25
    hue: float = 0.02
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        if len(self.crop_size) != 2 or min(self.crop_size) < 1:
            raise ConfigError(f"crop_size {self.crop_size} must be two positive numbers (height, width).")
        lo, hi = self.scale_range
        if not 0 < lo <= hi:
            raise ConfigError(f"scale_range {self.scale_range} must satisfy 0 < min <= max, e.g. (0.5, 2.0).")
        if not 0.0 <= self.hflip_prob <= 1.0:
            raise ConfigError(f"hflip_prob {self.hflip_prob} must be between 0 and 1.")
        if min(self.brightness, self.contrast, self.saturation) < 0 or not 0 <= self.hue <= 0.5:
            raise ConfigError("brightness, contrast and saturation must be >= 0 and hue within 0..0.5.")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ConfigError(f"mean {self.mean} and std {self.std} need three values each, std > 0.")


class RandomScale(v2.Transform):
    """Resize by a factor drawn uniformly from ``scale_range`` (masks: nearest neighbour)."""

    def __init__(self, scale_range: tuple[float, float]) -> None:
        super().__init__()
        self.scale_range = scale_range

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        h, w = v2.query_size(flat_inputs)
        lo, hi = self.scale_range
        s = lo + float(torch.rand(())) * (hi - lo)  # torch's RNG: DataLoader workers get distinct streams
        return {"size": [max(1, round(h * s)), max(1, round(w * s))]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return self._call_kernel(F.resize, inpt, params["size"], antialias=True)


def _to_tensors(settings: TransformSettings) -> list[v2.Transform]:
    return [
        v2.ToDtype({tv_tensors.Image: torch.float32, tv_tensors.Mask: torch.int64, "others": None}, scale=True),
        v2.Normalize(mean=list(settings.mean), std=list(settings.std)),
    ]


def train_transforms(settings: TransformSettings | None = None) -> v2.Compose:
    """Random scale, random crop (padding: image 0, mask 255), horizontal flip, colour jitter, normalise."""
    s = settings or TransformSettings()
    return v2.Compose(
        [
            RandomScale(s.scale_range),
            v2.RandomCrop(s.crop_size, pad_if_needed=True, fill={tv_tensors.Image: 0, tv_tensors.Mask: IGNORE_INDEX}),
            v2.RandomHorizontalFlip(s.hflip_prob),
            v2.ColorJitter(brightness=s.brightness, contrast=s.contrast, saturation=s.saturation, hue=s.hue),
            *_to_tensors(s),
        ]
    )


def eval_transforms(settings: TransformSettings | None = None) -> v2.Compose:
    """Full resolution: only conversion and normalisation."""
    return v2.Compose(_to_tensors(settings or TransformSettings()))


def denormalize(image: torch.Tensor, settings: TransformSettings | None = None) -> torch.Tensor:
    """Undo the normalisation: C x H x W (or B x C x H x W) float -> uint8 in the same layout."""
    s = settings or TransformSettings()
    mean = torch.tensor(s.mean, dtype=image.dtype, device=image.device).view(-1, 1, 1)
    std = torch.tensor(s.std, dtype=image.dtype, device=image.device).view(-1, 1, 1)
    return ((image * std + mean) * 255.0).round().clamp(0, 255).to(torch.uint8)
