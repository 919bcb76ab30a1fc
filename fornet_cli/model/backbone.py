"""Backbones returning feature maps at chosen stages: any timm model, or torchvision's MobileNetV3-Large.

Feature index k is the output of the k-th stage as timm numbers them (1: stride 4, 2: stride 8, 3: stride 16,
4: the last stage). ``tv_mobilenet_v3_large`` is torchvision's implementation of MobileNetV3-Large (the one
its LRASPP uses: BatchNorm eps 1e-3, its own weight initialisation) with the same stage outputs as timm's
``mobilenetv3_large_100``, so the two can be compared inside one FoR-Net variant.
"""

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
        if name in TORCHVISION_BACKBONES:
            self.body = TorchvisionMobileNetV3(output_stride, indices)
            if pretrained is not None:
                self.body.load_timm_weights(Path(pretrained))
            self.channels, self.strides = self.body.channels, self.body.strides
            return
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


TORCHVISION_BACKBONES: tuple[str, ...] = ("tv_mobilenet_v3_large",)
# The timm architecture whose ImageNet weights each torchvision backbone loads (load_timm_weights)
IMAGENET_ARCHITECTURE: dict[str, str] = {"tv_mobilenet_v3_large": "mobilenetv3_large_100"}


class TorchvisionMobileNetV3(nn.Module):
    """torchvision's MobileNetV3-Large ``features``, returning timm's stage outputs (see the module docstring).

    torchvision's BatchNorm momentum (0.01, for long ImageNet schedules) is set to PyTorch's default 0.1, as
    fornet trains every model: with 0.01 the running statistics barely move in a short run.
    """

    # torchvision block index whose output ends each timm stage (1: stride 4 ... 4: the 960-channel head)
    STAGE_END = {1: 3, 2: 6, 3: 12, 4: 16}

    def __init__(self, output_stride: int, indices: tuple[int, ...]) -> None:
        super().__init__()
        from torchvision.models import mobilenet_v3_large

        if output_stride not in (16, 32) or any(i not in self.STAGE_END for i in indices):
            raise ConfigError(f"tv_mobilenet_v3_large supports output stride 16 or 32 and feature indices 1-4; "
                              f"got {output_stride} and {indices}.")
        self.features = mobilenet_v3_large(weights=None, dilated=output_stride == 16).features[: self.STAGE_END[max(indices)] + 1]
        for m in self.features.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = 0.1
        self.taps = [self.STAGE_END[i] for i in indices]
        full = {1: (24, 4), 2: (40, 8), 3: (112, 16), 4: (960, min(output_stride, 32))}
        self.channels = [full[i][0] for i in indices]
        self.strides = [full[i][1] if i < 4 or output_stride == 32 else 16 for i in indices]

    def load_timm_weights(self, path: Path) -> None:
        """Load timm's ``mobilenetv3_large_100`` ImageNet weights (a .safetensors file, timm key names).

        The two implementations hold the same tensors in the same order (checked shape by shape); timm's key
        order comes from building its model structure (on the meta device), the file's own order is not used.
        """
        import timm
        from safetensors.torch import load_file

        with torch.device("meta"):
            reference = timm.create_model(IMAGENET_ARCHITECTURE["tv_mobilenet_v3_large"], features_only=True, out_indices=(4,))
        timm_keys = [k for k in reference.state_dict() if not k.endswith("num_batches_tracked")]
        ours = [k for k in self.features.state_dict() if not k.endswith("num_batches_tracked")]
        try:
            state = load_file(str(path), device="cpu")
        except Exception as exc:  # safetensors raises several types on bad files
            raise WeightsError(f"{path} is not a valid safetensors file ({exc}).") from None
        missing = [k for k in timm_keys[: len(ours)] if k not in state]
        if missing:
            raise WeightsError(
                f"{path} does not hold timm's mobilenetv3_large_100 weights ({len(missing)} tensors missing, e.g. "
                f"{missing[0]}). Use the variant's registered ImageNet weights (`fornet weights list`)."
            )
        mapped = {mine: state[theirs] for mine, theirs in zip(ours, timm_keys)}
        wrong = [k for k, v in mapped.items() if v.shape != self.features.state_dict()[k].shape]
        if wrong:
            raise WeightsError(f"{path}: tensor {wrong[0]} has another shape than torchvision's MobileNetV3-Large.")
        self.features.load_state_dict(mapped, strict=False)  # num_batches_tracked counters stay at 0

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, block in enumerate(self.features):
            x = block(x)
            if i in self.taps:
                out.append(x)
        return out
