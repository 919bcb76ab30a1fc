"""torchvision's segmentation models, the peers fornet compares itself with (benchmark, study).

Built with random weights and nothing downloaded; their forward returns ``{"out": logits}``.
"""

from __future__ import annotations

from torch import nn

from ..errors import ConfigError

PEERS: tuple[str, ...] = ("lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large", "deeplabv3_resnet50")


def build_peer(name: str, num_classes: int = 19) -> nn.Module:
    """A torchvision segmentation model with random weights (nothing is downloaded)."""
    from torchvision.models import segmentation

    if name not in PEERS:
        raise ConfigError(f"Unknown peer {name!r}; choose from {', '.join(PEERS)}.")
    return getattr(segmentation, name)(weights=None, weights_backbone=None, num_classes=num_classes)
