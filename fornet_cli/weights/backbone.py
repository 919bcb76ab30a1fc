"""ImageNet initialisation of a variant's backbone: a registry name or a file, resolved to a local path.

The model package never downloads; training (and anyone building a model by hand) resolves the weights
here and hands the path to :func:`fornet_cli.model.create_model`.
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import hub
from ..errors import WeightsError
from ..model import get_entry
from ..model.backbone import IMAGENET_ARCHITECTURE


def imagenet_weights(model_name: str) -> Path:
    """Download (or find in the cache) and verify the variant's registered ImageNet weights."""
    entry = get_entry(model_name)
    if entry.backbone_weights is None:
        raise WeightsError(f"No ImageNet weights are registered for {entry.name}; train it with --no-pretrained.")
    spec = hub.get_spec(entry.backbone_weights, hub.load_registry())
    path, _ = hub.download_spec(spec)
    return path


def backbone_init(pretrained: bool | str, model_name: str) -> Path | None:
    """The ``pretrained_backbone`` path for a training run's ``pretrained`` setting (None: random init).

    ``True``: the variant's registered ImageNet weights. A string: a ``.safetensors`` file, or a registry
    name of kind ``backbone`` (downloaded and verified).
    """
    if pretrained is False:
        return None
    if pretrained is True:
        return imagenet_weights(model_name)
    path = Path(pretrained).expanduser()
    if path.suffix == ".safetensors" or os.sep in pretrained:
        if not path.is_file():
            raise WeightsError(f"Backbone weights file {path} does not exist.")
        return path
    spec = hub.get_spec(pretrained, hub.load_registry())
    if spec.kind != "backbone":
        raise WeightsError(f"{spec.name!r} is a {spec.kind} checkpoint, not ImageNet backbone weights.")
    expected = get_entry(model_name).config.backbone
    expected = IMAGENET_ARCHITECTURE.get(expected, expected)
    if spec.architecture != expected:
        raise WeightsError(f"{spec.name!r} are weights for {spec.architecture}, but {model_name} uses {expected}.")
    weights, _ = hub.download_spec(spec)
    return weights
