"""Backbones from timm, returning a low-level and a high-level feature map."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError, WeightsError


class Backbone(nn.Module):
    """A timm ``features_only`` network that returns ``(low, high)``.

    ``low`` feeds the decoder's skip connection, ``high`` feeds the FoR-Net head. Dilation replaces
    stride where ``output_stride`` asks for it (timm's ``output_stride`` argument).
    """

    def __init__(
        self,
        name: str,
        output_stride: int,
        low_index: int,
        high_index: int = -1,
        pretrained: bool | str | os.PathLike = False,
    ) -> None:
        super().__init__()
        import timm

        kwargs: dict = {}
        if isinstance(pretrained, (str, os.PathLike)) and not isinstance(pretrained, bool):
            path = Path(pretrained)
            if not path.is_file():
                raise WeightsError(f"Backbone weights file {path} does not exist. Pass an existing .safetensors file.")
            if path.suffix != ".safetensors":
                raise WeightsError(
                    f"Backbone weights {path} are not a .safetensors file; fornet does not unpickle weight files. "
                    "Convert them with safetensors.torch.save_file."
                )
            kwargs["pretrained_cfg_overlay"] = {"file": str(path)}
            pretrained = True
        probe = timm.create_model(name, features_only=True, output_stride=output_stride, pretrained=False)
        n = len(probe.feature_info.channels())
        high_index = high_index % n
        if not 0 <= low_index < high_index:
            raise ConfigError(f"Backbone {name}: low_index {low_index} must be below high_index {high_index}.")
        del probe
        try:
            self.body = timm.create_model(
                name,
                features_only=True,
                output_stride=output_stride,
                out_indices=(low_index, high_index),
                pretrained=bool(pretrained),
                **kwargs,
            )
        except (OSError, RuntimeError) as exc:  # network, missing file, or mismatching state dict
            raise WeightsError(f"Could not load ImageNet weights for backbone {name}: {exc}") from exc
        self.low_channels, self.high_channels = self.body.feature_info.channels()
        self.low_stride, self.high_stride = self.body.feature_info.reduction()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low, high = self.body(x)
        return low, high
