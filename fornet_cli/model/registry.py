"""Registry of FoR-Net variants: names map to configs (variants are data)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import UnknownModelError, close_matches
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
    pretrained_backbone: str | os.PathLike | None = None,
    topk_ratios: float | Sequence[float] | None = None,
) -> FornetModel:
    """Build a registered variant.

    Args:
        name: a name from :func:`list_models`.
        num_classes: output classes (19 for Cityscapes trainIds).
        pretrained_backbone: None for random init, or a path to a ``.safetensors`` file with the backbone's
            ImageNet weights (timm key names). The model package never downloads: resolve the variant's
            registered weights with :func:`fornet_cli.weights.imagenet_weights` and pass the path here.
        topk_ratios: override the variant's Top-K ratios (one per branch, or one number for all).
    """
    entry = get_entry(name)
    return FornetModel(
        entry.config, num_classes=num_classes, pretrained_backbone=pretrained_backbone, topk_ratios=topk_ratios, name=name
    )
