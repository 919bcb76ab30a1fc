"""Backbones from timm, returning a low-level and a high-level feature map."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError, WeightsError


class Backbone(nn.Module):
    """A timm ``features_only`` network returning the feature maps at ``indices`` (lowest stride first).

    Dilation replaces stride where ``output_stride`` asks for it (timm's ``output_stride`` argument).
    """

    def __init__(
        self,
        name: str,
        output_stride: int,
        indices: tuple[int, ...],
        pretrained: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        import timm

        kwargs: dict = {}
        if pretrained is not None:
            path = Path(pretrained)
            if not path.is_file():
                raise WeightsError(f"Backbone weights file {path} does not exist. Pass an existing .safetensors file.")
            if path.suffix != ".safetensors":
                raise WeightsError(
                    f"Backbone weights {path} are not a .safetensors file; fornet does not unpickle weight files. "
                    "Convert them with safetensors.torch.save_file."
                )
            kwargs["pretrained_cfg_overlay"] = {"file": str(path)}
        if list(indices) != sorted(set(indices)):
            raise ConfigError(f"Backbone {name}: feature indices {indices} must be increasing.")
        try:
            # timm logs the classifier keys it drops from an ImageNet checkpoint; that is expected here.
            with _quiet("timm.models._builder"):
                self.body = timm.create_model(
                    name,
                    features_only=True,
                    output_stride=output_stride,
                    out_indices=indices,
                    pretrained=pretrained is not None,
                    **kwargs,
                )
        except (OSError, RuntimeError) as exc:  # network, missing file, or mismatching state dict
            raise WeightsError(f"Could not load ImageNet weights for backbone {name}: {exc}") from exc
        self.channels: list[int] = self.body.feature_info.channels()
        self.strides: list[int] = self.body.feature_info.reduction()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.body(x))


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
