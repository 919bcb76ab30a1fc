"""A published FoR-Net checkpoint: ``model.safetensors`` + ``config.json``.

``config.json`` holds everything needed to rebuild the model without the registry (the variant's full
config), plus what inference needs: class names, palette, mean/std and the Top-K ratios. Weights are
loaded with ``strict=True``: a file that does not match the architecture is refused, never half-loaded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, UnknownModelError, WeightsError
from ..fsutil import atomic_path, atomic_write_text
from .fornet import FornetConfig, FornetModel
from .registry import get_entry

FORMAT = "fornet"
FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Bounds for values read from a config.json we did not write: a hostile or corrupt file must not make us
# allocate absurd amounts of memory before the weights are even checked.
_LIMITS = {"channels": (4, 4096), "low_channels": (1, 4096), "num_classes": (1, 4096), "output_stride": (4, 64)}


@dataclass
class ModelMeta:
    """What travels with the weights."""

    architecture: str
    num_classes: int
    class_names: list[str]
    palette: list[list[int]]
    mean: list[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: list[float] = field(default_factory=lambda: list(IMAGENET_STD))
    topk_ratios: list[float] = field(default_factory=list)
    model_config: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # training recipe, metrics, ... (free form)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "architecture": self.architecture,
            "num_classes": self.num_classes,
            "class_names": self.class_names,
            "palette": self.palette,
            "mean": self.mean,
            "std": self.std,
            "topk_ratios": self.topk_ratios,
            "model_config": self.model_config,
            **({"extra": self.extra} if self.extra else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config.json") -> ModelMeta:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise WeightsError(f"{source} is not a fornet model config (expected \"format\": \"fornet\").")
        if int(data.get("format_version", 0)) > FORMAT_VERSION:
            raise WeightsError(
                f"{source} was written by a newer fornet (format {data['format_version']}); upgrade fornet-cli."
            )
        try:
            n = int(data["num_classes"])
            meta = cls(
                architecture=str(data["architecture"]),
                num_classes=n,
                class_names=[str(c) for c in data.get("class_names") or [f"class_{i}" for i in range(n)]],
                palette=[[int(v) for v in rgb] for rgb in data.get("palette") or []],
                mean=[float(v) for v in data.get("mean", IMAGENET_MEAN)],
                std=[float(v) for v in data.get("std", IMAGENET_STD)],
                topk_ratios=[float(r) for r in data.get("topk_ratios") or []],
                model_config=dict(data.get("model_config") or {}),
                extra=dict(data.get("extra") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise WeightsError(f"{source} is missing or has a malformed field ({exc}).") from None
        _check_range("num_classes", meta.num_classes, source)
        if len(meta.class_names) != n or (meta.palette and len(meta.palette) != n):
            raise WeightsError(f"{source}: class_names and palette must have num_classes ({n}) entries.")
        if len(meta.mean) != 3 or len(meta.std) != 3 or min(meta.std) <= 0:
            raise WeightsError(f"{source}: mean and std need 3 values each, std positive.")
        return meta


def _check_range(key: str, value: Any, source: str) -> None:
    lo, hi = _LIMITS[key]
    if not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"{source}: {key}={value!r} is outside the plausible range [{lo}, {hi}]; the file is corrupt.")


def config_from_meta(meta: ModelMeta, source: str) -> FornetConfig:
    """The variant config from a checkpoint: its own ``model_config``, else the registry's entry."""
    if not meta.model_config:
        try:
            return get_entry(meta.architecture).config
        except UnknownModelError as exc:
            raise UnknownModelError(f"{source}: {exc}") from None
    try:
        config = FornetConfig.from_dict(meta.model_config)
    except TypeError as exc:
        raise ConfigError(f"{source}: model_config is malformed ({exc}).") from None
    for key in ("channels", "low_channels", "output_stride"):
        _check_range(key, getattr(config, key), source)
    import timm

    if not timm.is_model(config.backbone):
        raise ConfigError(f"{source}: unknown backbone {config.backbone!r}; is the file from a newer fornet or timm?")
    if config.decoder not in ("deeplabv3plus", "light"):
        raise ConfigError(f"{source}: unknown decoder {config.decoder!r}.")
    if any(k not in (1, 3, 5, 7, 9, 11) for k in config.branch_kernels) or any(
        not 1 <= d <= 64 for d in config.branch_dilations
    ):
        raise ConfigError(f"{source}: branch kernels/dilations out of range.")
    return config


def build_from_meta(meta: ModelMeta, source: str) -> FornetModel:
    config = config_from_meta(meta, source)
    ratios = meta.topk_ratios or None
    return FornetModel(config, num_classes=meta.num_classes, topk_ratios=ratios, name=meta.architecture)


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """Read a ``.safetensors`` file; a malformed header is a WeightsError, not a crash."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises SafetensorError / OSError / ValueError on bad files
        raise WeightsError(f"{path} is not a valid safetensors file ({exc}). Download or export it again.") from None


def load_into(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """``load_state_dict(strict=True)`` with a readable error on any mismatch."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[:4]
        raise WeightsError(
            f"The weights in {source} do not match the architecture in its config.json: " + " ".join(first)
        ) from None


def load_pretrained(folder: str | os.PathLike) -> tuple[FornetModel, ModelMeta]:
    """Load a folder with ``model.safetensors`` and ``config.json``."""
    folder = Path(folder)
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    for p in (config_path, weights_path):
        if not p.is_file():
            raise WeightsError(f"{p} is missing: a fornet checkpoint folder holds {WEIGHTS_NAME} and {CONFIG_NAME}.")
    return load_files(weights_path, config_path)


def load_files(weights_path: Path, config_path: Path) -> tuple[FornetModel, ModelMeta]:
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{config_path} is not readable JSON ({exc}).") from None
    meta = ModelMeta.from_dict(data, str(config_path))
    state = load_state_dict_file(weights_path)
    model = build_from_meta(meta, str(config_path))
    load_into(model, state, str(weights_path))
    model.eval()
    return model, meta


def meta_for(
    model: FornetModel,
    class_names: Sequence[str],
    palette: Sequence[Sequence[int]] | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    extra: dict[str, Any] | None = None,
) -> ModelMeta:
    if len(class_names) != model.num_classes:
        raise ConfigError(f"{len(class_names)} class names given for a model with {model.num_classes} classes.")
    return ModelMeta(
        architecture=model.name or model.config.backbone,
        num_classes=model.num_classes,
        class_names=list(class_names),
        palette=[list(map(int, c)) for c in palette] if palette is not None else [],
        mean=list(mean),
        std=list(std),
        topk_ratios=list(model.topk_ratios),
        model_config=model.config.to_dict(),
        extra=dict(extra or {}),
    )


def save_pretrained(model: FornetModel, folder: str | os.PathLike, meta: ModelMeta) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``folder`` (each file atomically)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(folder / WEIGHTS_NAME) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    atomic_write_text(folder / CONFIG_NAME, json.dumps(meta.to_dict(), indent=2) + "\n")
    return folder
