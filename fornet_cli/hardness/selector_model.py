"""Loading a model for show-hardness: only FoR-Net models have the importance selector and Top-K masks
it draws; anything else (an ONNX export, a torchvision or transformers checkpoint) is refused with a message
that says so and what to pass instead."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import WeightsError
from ..weights.format import CONFIG_NAME, WEIGHTS_NAME
from ..weights.resolve import LoadedModel, load_weights

# Files that hold an exported graph: they compute logits only, without the importance map or the masks.
EXPORT_SUFFIXES = (".onnx", ".ort", ".engine", ".plan", ".trt", ".tflite", ".pb", ".torchscript", ".mlmodel")

_NEEDS = (
    "show-hardness needs a FoR-Net model with a selector (it draws the selector's importance map and Top-K "
    "regions). Pass a FoR-Net checkpoint: a folder with model.safetensors + config.json, a training run folder, "
    "an hf:// reference or a registry name (see `fornet weights list`)."
)


class NoSelectorError(WeightsError):
    """A model without FoR-Net's importance selector where one is needed."""


def require_selector(model: nn.Module, source: str = "the model") -> None:
    """NoSelectorError unless ``model`` has FoR-Net's selector (``forward_all`` with importance and masks)."""
    if not (callable(getattr(model, "forward_all", None)) and hasattr(model, "selector") and hasattr(model, "topk_ratios")):
        raise NoSelectorError(f"{source} is a {type(model).__name__}, which has no importance selector. {_NEEDS}")


def _refuse_without_selector(ref: str) -> None:
    """Explain early what ``load_weights`` would reject in terms that do not mention the selector."""
    path = Path(ref).expanduser()
    if path.suffix.lower() in EXPORT_SUFFIXES:
        raise NoSelectorError(
            f"{ref} is an exported model ({path.suffix}); exports compute the segmentation only, without the "
            f"importance map and Top-K masks. {_NEEDS} Use the checkpoint it was exported from."
        )
    # Only where load_weights reads a config.json: beside model.safetensors (a training run folder holds
    # its training config.json, which is no model config).
    weights = path / WEIGHTS_NAME if path.is_dir() else path
    config = weights.with_name(CONFIG_NAME)
    if weights.suffix != ".safetensors" or not weights.is_file() or not config.is_file():
        return
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return  # load_weights explains unreadable files
    if isinstance(data, dict) and data.get("format") != "fornet":
        kind = data.get("architectures") or data.get("model_type") or data.get("architecture") or data.get("arch")
        kind = ", ".join(map(str, kind)) if isinstance(kind, list) else kind
        what = f" (its {CONFIG_NAME} describes {kind})" if kind else ""
        raise NoSelectorError(f"{ref} is not a FoR-Net checkpoint{what}. {_NEEDS}")


def load_selector_model(ref: str | os.PathLike, **kwargs: Any) -> LoadedModel:
    """:func:`load_weights`, refusing models without a selector with a message that says so."""
    _refuse_without_selector(str(ref))
    loaded = load_weights(ref, **kwargs)
    require_selector(loaded.model, loaded.source)
    return loaded


def chosen_by(cue: str | None) -> str:
    """What chose the Top-K cells, in words, for a model's run-time ``selector_cue``."""
    return {
        None: "the selector",
        "none": "the learned selector",
        "error_rule": "the first pass's expected errors",
        "gap_rule": "the first pass's logit gap",
        "gap": "the learned selector plus the first pass's logit gap",
    }.get(cue, f"selector cue {cue}")
