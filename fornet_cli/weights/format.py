"""A published FoR-Net checkpoint: ``model.safetensors`` + ``config.json``.

``config.json`` holds everything needed to rebuild the model without the registry (the variant's full
config), plus what inference needs: class names, palette, mean/std and the Top-K ratios. Weights are
loaded with ``strict=True``: a file that does not match the architecture is refused, never half-loaded.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..data.normalize import IMAGENET_MEAN, IMAGENET_STD
from ..errors import ConfigError, OutputError, UnknownModelError, WeightsError
from ..fsutil import atomic_path, atomic_write_text, write_failure
from ..model.backbone import TORCHVISION_BACKBONES
from ..model.fornet import DECODERS, FornetConfig, FornetModel, selector_cue_problem
from ..model.registry import get_entry
from ..model.variants import REDESIGNED

FORMAT = "fornet"
FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"

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
        if len(meta.mean) != 3 or len(meta.std) != 3 or not all(math.isfinite(v) for v in meta.mean + meta.std) or min(meta.std) <= 0:
            raise WeightsError(f"{source}: mean and std need 3 finite values each, std positive.")
        if any(len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb) for rgb in meta.palette):
            raise WeightsError(f"{source}: every palette colour must be 3 values in 0..255.")
        return meta


def _check_range(key: str, value: Any, source: str) -> None:
    lo, hi = _LIMITS[key]
    if not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"{source}: {key}={value!r} is outside the plausible range [{lo}, {hi}]; the file is corrupt.")


def config_from_meta(meta: ModelMeta, source: str) -> FornetConfig:
    """The variant config from a checkpoint: its own ``model_config``, else the registry's entry."""
    if not meta.model_config:
        try:
            config = get_entry(meta.architecture).config
        except UnknownModelError as exc:
            raise UnknownModelError(f"{source}: {exc}") from None
        _refuse_ambiguous_design(meta, config, source)
        return config
    try:
        config = FornetConfig.from_dict(meta.model_config)
    except TypeError as exc:
        raise ConfigError(f"{source}: model_config is malformed ({exc}).") from None
    for key in ("channels", "low_channels", "output_stride"):
        _check_range(key, getattr(config, key), source)
    import timm

    if not (timm.is_model(config.backbone) or config.backbone in TORCHVISION_BACKBONES):
        raise ConfigError(f"{source}: unknown backbone {config.backbone!r}; is the file from a newer fornet or timm?")
    if config.decoder not in DECODERS:
        raise ConfigError(f"{source}: unknown decoder {config.decoder!r}.")
    if (problem := selector_cue_problem(config)) is not None:
        raise ConfigError(f"{source}: {problem}.")
    if any(k not in (1, 3, 5, 7, 9, 11) for k in config.branch_kernels) or any(
        not 1 <= d <= 64 for d in config.branch_dilations
    ):
        raise ConfigError(f"{source}: branch kernels/dilations out of range.")
    return config


def _redesigns(name: str) -> str:
    earlier = ", ".join(f"{old} (fornet {version})" for old, version in REDESIGNED[name])
    return f"{name} was redesigned (docs/MODEL.md); its earlier designs load as {earlier}"


def _tensor_layout(config: FornetConfig, num_classes: int) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in FornetModel(config, num_classes=num_classes).state_dict().items()}


def _refuse_ambiguous_design(meta: ModelMeta, config: FornetConfig, source: str) -> None:
    """A file that names a redesigned variant without describing it (no ``model_config``) is refused when an
    earlier design has the same tensors: the weights would load into the current design silently and compute
    something else (fornet_mbv3 0.2 and 0.3 differ in how the branches add up, not in their tensors)."""
    if meta.architecture not in REDESIGNED:
        return
    layout = _tensor_layout(config, meta.num_classes)
    same = [old for old, _ in REDESIGNED[meta.architecture]
            if _tensor_layout(get_entry(old).config, meta.num_classes) == layout]
    if same:
        raise WeightsError(
            f"{source} names {meta.architecture} without describing it (no \"model_config\"), and its weights "
            f"fit {' and '.join(same)} as well, which compute something else. {_redesigns(meta.architecture)}. "
            f"Set \"architecture\" to the design that wrote the weights; for the current design, add its "
            f"\"model_config\" (fornet_cli.create_model(\"{meta.architecture}\").config.to_dict()), as the "
            "checkpoints and exports fornet writes do."
        )


def build_from_meta(meta: ModelMeta, source: str, device: str | torch.device | None = None) -> FornetModel:
    """The model a config describes (random weights). ``device="meta"`` builds it without allocating memory."""
    config = config_from_meta(meta, source)
    ratios = meta.topk_ratios or None
    try:
        with torch.device(device) if device is not None else contextlib.nullcontext():
            return FornetModel(config, num_classes=meta.num_classes, topk_ratios=ratios, name=meta.architecture)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def check_shapes(meta: ModelMeta, state: dict[str, torch.Tensor], source: str, config_source: str) -> None:
    """Compare a state dict with the architecture its config describes, before that model is built for real.

    The model is built on the ``meta`` device (shapes only, no memory), so a config.json with absurd but
    in-range sizes (thousands of channels in many wide branches: tens of GB) is refused before anything
    is allocated; float weights stored as integers are refused too (loading would cast them silently).
    """
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise WeightsError(f"{source} does not hold a state dict (names -> tensors); it is not a fornet checkpoint.")
    expected = build_from_meta(meta, config_source, device="meta").state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k}: {tuple(state[k].shape)} {str(state[k].dtype).removeprefix('torch.')} in the file, "
        f"{tuple(v.shape)} {str(v.dtype).removeprefix('torch.')} in the model"
        for k, v in expected.items()
        if k in state and (state[k].shape != v.shape or state[k].is_floating_point() != v.is_floating_point())
    ]
    if missing or unexpected or wrong:
        parts = [f"{len(missing)} missing (e.g. {missing[0]})" if missing else "",
                 f"{len(unexpected)} unexpected (e.g. {unexpected[0]})" if unexpected else "",
                 f"{len(wrong)} of another shape or type (e.g. {wrong[0]})" if wrong else ""]
        hint = " Use the config.json that was saved with these weights."
        if not meta.model_config and meta.architecture in REDESIGNED:
            # A file that names its variant without describing it: it may predate a redesign.
            hint = f" {_redesigns(meta.architecture)}: set \"architecture\" to the name of the design in {config_source}."
        raise WeightsError(
            f"The weights in {source} do not match the architecture in {config_source}: "
            + "; ".join(p for p in parts if p) + "." + hint
        )


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


def read_config_json(path: Path) -> Any:
    """Parse a config.json; unreadable, malformed or absurdly nested files are a WeightsError."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{path} is not readable JSON ({exc}).") from None
    except RecursionError:  # json recurses once per nesting level
        raise WeightsError(f"{path} is not a fornet config: its JSON is nested too deeply to read.") from None


def load_files(weights_path: Path, config_path: Path) -> tuple[FornetModel, ModelMeta]:
    data = read_config_json(config_path)
    meta = ModelMeta.from_dict(data, str(config_path))
    state = load_state_dict_file(weights_path)
    check_shapes(meta, state, str(weights_path), str(config_path))
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
    try:
        with atomic_path(folder / WEIGHTS_NAME) as tmp:
            save_file(state, str(tmp), metadata={"format": "pt"})
        atomic_write_text(folder / CONFIG_NAME, json.dumps(meta.to_dict(), indent=2) + "\n")
    except Exception as exc:  # OSError, or safetensors' SafetensorError wrapping one (a full disk)
        raise OutputError(
            f"Could not write the checkpoint into {folder} ({write_failure(folder / WEIGHTS_NAME, exc)}). Files "
            "there are either complete or absent. Free some space (or fix the folder's permissions) and try again."
        ) from None
    return folder
