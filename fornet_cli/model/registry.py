"""Registry of FoR-Net variants: names map to configs (variants are data)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import UnknownModelError, WeightsError, close_matches
from .fornet import FornetConfig, FornetModel


@dataclass(frozen=True)
class ModelEntry:
    name: str
    config: FornetConfig
    backbone_weights: str | None  # timm pretrained tag of the ImageNet weights for the backbone, if any


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, config: FornetConfig, backbone_weights: str | None = None) -> None:
    """Add a variant. Re-registering a name replaces it (useful in notebooks)."""
    _REGISTRY[name] = ModelEntry(name, config, backbone_weights)


def list_models() -> list[str]:
    """Names of every registered variant, in registration order (the paper configuration first)."""
    return list(_REGISTRY)


def get_entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(
            f"Unknown model {name!r}.{close_matches(name, list(_REGISTRY))} "
            f"Available models: {', '.join(list_models())} (see `fornet models`)."
        ) from None


def create_model(
    name: str,
    num_classes: int = 19,
    pretrained_backbone: bool | str | os.PathLike = False,
    topk_ratios: float | Sequence[float] | None = None,
) -> FornetModel:
    """Build a registered variant.

    Args:
        name: a name from :func:`list_models`.
        num_classes: output classes (19 for Cityscapes trainIds).
        pretrained_backbone: ``False`` for random init, a path to a ``.safetensors`` file with the
            backbone's ImageNet weights (timm key names), or ``True`` for the variant's registered ImageNet
            weights (downloaded and verified through the weights registry, see ``fornet weights list``).
        topk_ratios: override the variant's Top-K ratios (one per branch, or one number for all).
    """
    entry = get_entry(name)
    if pretrained_backbone is True:
        pretrained_backbone = backbone_weights_file(entry)
    return FornetModel(
        entry.config, num_classes=num_classes, pretrained_backbone=pretrained_backbone, topk_ratios=topk_ratios, name=name
    )


def backbone_weights_file(entry: ModelEntry) -> Path:
    """Download (or find in the cache) and verify the variant's registered ImageNet weights."""
    from .. import hub  # imported here: building a model without pretrained weights needs no Hub code

    if entry.backbone_weights is None:
        raise WeightsError(f"No ImageNet weights are registered for {entry.name}; train it with --no-pretrained.")
    spec = hub.get_spec(entry.backbone_weights, hub.load_registry())
    path, _ = hub.download_spec(spec)
    return path
