"""Turn a ``--weights`` argument into a model.

Accepted, in this order:
  * ``hf://org/repo[@revision]``  a published checkpoint on the Hub (model.safetensors + config.json)
  * a folder with model.safetensors + config.json (published / exported)
  * a training run folder (its checkpoints/best.pt, else checkpoints/last.pt)
  * a ``.safetensors`` file with config.json beside it
  * a pickled ``.pt``/``.pth``/``.ckpt`` file, only with ``trust_pickle`` (and then ``weights_only=True``)
  * a name from the weights registry (weights.toml, FORNET_WEIGHTS, --registry)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import hub
from ..devices import check_device
from ..errors import WeightsError
from ..model import FornetModel
from .checkpoint import load_checkpoint, run_checkpoint
from .format import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    ModelMeta,
    build_from_meta,
    check_shapes,
    load_files,
    load_into,
)

PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl")


@dataclass
class LoadedModel:
    model: FornetModel
    meta: ModelMeta
    source: str  # where the weights came from, for humans


def load_weights(
    ref: str | os.PathLike,
    *,
    num_classes: int | None = None,
    registry: str | os.PathLike | None = None,
    trust_pickle: bool = False,
    cache_dir: str | os.PathLike | None = None,
    endpoint: str | None = None,
    device: str | torch.device = "cpu",
) -> LoadedModel:
    """Load a FoR-Net model from any accepted ``--weights`` reference (see the module docstring).

    ``cache_dir`` and ``endpoint`` default to huggingface_hub's (``HF_HOME``/``HF_HUB_CACHE``, ``HF_ENDPOINT``).
    """
    dev = check_device(device)  # before any download: a bad --device should not cost one
    hub_args = {"cache_dir": cache_dir, "endpoint": endpoint}
    loaded = _resolve(str(ref), registry=registry, trust_pickle=trust_pickle, hub_args=hub_args)
    if num_classes is not None and loaded.meta.num_classes != num_classes:
        raise WeightsError(
            f"{loaded.source} predicts {loaded.meta.num_classes} classes, but {num_classes} were requested. "
            "Use weights trained for your label set, or drop the class option."
        )
    loaded.model.to(dev).eval()
    return loaded


def _resolve(ref: str, *, registry, trust_pickle: bool, hub_args: dict) -> LoadedModel:
    if ref.startswith("hf://"):
        repo_id, _, revision = ref[len("hf://") :].partition("@")
        if not hub.REPO_ID.fullmatch(repo_id):
            raise WeightsError(f"{ref!r}: write hf://org/repo or hf://org/repo@revision.")
        weights = hub.hub_download(repo_id, WEIGHTS_NAME, revision or "main", **hub_args)
        config = hub.hub_download(repo_id, CONFIG_NAME, revision or "main", **hub_args)
        model, meta = load_files(weights, config)
        return LoadedModel(model, meta, ref)
    path = Path(ref).expanduser()
    if path.is_dir():
        if (path / WEIGHTS_NAME).is_file() and (path / CONFIG_NAME).is_file():
            model, meta = load_files(path / WEIGHTS_NAME, path / CONFIG_NAME)
            return LoadedModel(model, meta, str(path))
        ckpt = run_checkpoint(path)
        if ckpt is not None:
            return _from_checkpoint(ckpt)
        raise WeightsError(
            f"{path} is a folder but holds neither {WEIGHTS_NAME} + {CONFIG_NAME} nor a training run's "
            "checkpoints/best.pt or checkpoints/last.pt."
        )
    if path.is_file():
        if path.suffix == ".safetensors":
            config = path.with_name(CONFIG_NAME)
            if not config.is_file():
                raise WeightsError(f"{path} needs its {CONFIG_NAME} in the same folder to rebuild the model.")
            model, meta = load_files(path, config)
            return LoadedModel(model, meta, str(path))
        if path.suffix in PICKLE_SUFFIXES:
            if not trust_pickle:
                raise WeightsError(
                    f"{path} is a pickled file; fornet does not unpickle files it did not find in a run folder. "
                    "If you trust it, pass --trust-pickle (it is then read with weights_only=True)."
                )
            return _from_checkpoint(path)
        if path.suffix == ".onnx":  # fornet predict runs these itself (engine/onnx_runtime.py)
            raise WeightsError(
                f"{path} is an exported ONNX model: `fornet predict` runs it with onnxruntime, but this command "
                "needs the PyTorch weights (a checkpoint folder, a run folder or a .safetensors file)."
            )
        raise WeightsError(f"{path}: unsupported weights format {path.suffix!r} (expected .safetensors).")
    if os.sep in ref or ref.endswith((".safetensors", ".onnx", *PICKLE_SUFFIXES)):
        raise WeightsError(f"{ref} does not exist.")
    specs = hub.load_registry(registry)
    spec = hub.get_spec(ref, specs)
    if spec.kind != "fornet":
        raise WeightsError(
            f"{spec.name!r} are ImageNet weights for the {spec.architecture} backbone, not a segmentation "
            "model. Use them to initialise training (`fornet train --pretrained`), or pick a FoR-Net checkpoint."
        )
    weights, config = hub.download_spec(spec, **hub_args)
    assert config is not None  # fornet entries always name their config (checked when parsed)
    model, meta = load_files(weights, config)
    return LoadedModel(model, meta, f"{spec.name} ({spec.repo_id}@{spec.revision})")


def _from_checkpoint(path: Path) -> LoadedModel:
    state = load_checkpoint(path)
    if "model" not in state or "meta" not in state:
        raise WeightsError(f"{path} is not a fornet training checkpoint (no 'model' and 'meta' entries).")
    if state["meta"] is None:
        model = state.get("config", {}).get("model", "another model")
        raise WeightsError(f"{path} holds {model}, trained by fornet for comparison; it is not a FoR-Net model.")
    meta = ModelMeta.from_dict(state["meta"], str(path))
    check_shapes(meta, state["model"], str(path), str(path))
    model = build_from_meta(meta, str(path))
    load_into(model, state["model"], str(path))
    return LoadedModel(model, meta, str(path))
