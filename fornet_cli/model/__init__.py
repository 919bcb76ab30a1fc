"""FoR-Net models: the paper's configuration and our efficient variants."""

from . import variants as _variants  # noqa: F401  (registers the built-in variants)
from .fornet import PAPER_RATIOS, FornetConfig, FornetModel
from .outputs import FornetOutput, logits_of
from .registry import ModelEntry, create_model, get_entry, list_models, register_model

__all__ = [
    "PAPER_RATIOS",
    "FornetConfig",
    "FornetModel",
    "FornetOutput",
    "ModelEntry",
    "create_model",
    "get_entry",
    "list_models",
    "logits_of",
    "register_model",
]
