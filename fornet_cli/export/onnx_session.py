"""Run an exported ONNX model with onnxruntime, as a drop-in for the PyTorch model.

:class:`OnnxModel` is an ``nn.Module`` whose ``forward`` maps a normalised ``B x 3 x H x W`` tensor to logits,
so :class:`~fornet_cli.inference.predictor.Predictor` (whole image, sliding window, TTA) and ``fornet predict``
use it unchanged. Class names, palette and mean/std come from the metadata ``fornet export`` embeds.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError, MissingDependencyError, WeightsError
from ..extras import require
from ..weights.format import ModelMeta

ONNX_SUFFIX = ".onnx"
# metadata_props keys written by fornet export. META_KEY holds the complete ModelMeta as JSON (the exact
# round trip); the others repeat the essentials for humans and for other runtimes (Netron shows them).
META_KEY = "fornet.meta"


def is_onnx_file(ref: str | os.PathLike) -> bool:
    return str(ref).lower().endswith(ONNX_SUFFIX)


def providers_for(device: str) -> tuple[list[str], str]:
    """onnxruntime execution providers for ``auto``/``cpu``/``cuda``, and the device they amount to."""
    ort = require("onnxruntime", "Running an ONNX model")
    available = ort.get_available_providers()
    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"Unknown device {device!r} for onnxruntime; use auto, cpu or cuda.")
    if device == "cuda" and "CUDAExecutionProvider" not in available:
        raise MissingDependencyError(
            "--device cuda with an ONNX model needs onnxruntime's CUDAExecutionProvider, which this "
            f"onnxruntime lacks (it has {', '.join(available)}). Install onnxruntime-gpu, or use --device cpu."
        )
    if device in ("auto", "cuda") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"], "cuda"
    return ["CPUExecutionProvider"], "cpu"


def create_session(path: str | os.PathLike, device: str = "cpu", threads: int | None = None, arena: bool = True) -> Any:
    """An ``onnxruntime.InferenceSession`` with all graph optimisations and ``threads`` intra-op threads
    (default: torch's thread count, so comparisons with eager PyTorch use the same cores).

    ``arena=False`` turns off the CPU memory arena (which grows in large chunks and keeps them), so that
    the process's resident memory follows what the session really uses.
    """
    ort = require("onnxruntime", "Running an ONNX model")
    providers, _ = providers_for(device)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_cpu_mem_arena = arena
    options.log_severity_level = 3  # errors only: warnings about unused initialisers are noise here
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        raise WeightsError(
            f"onnxruntime cannot load {path} ({type(exc).__name__}: {str(exc).splitlines()[0][:300]}). "
            "Export it again with `fornet export --format onnx`."
        ) from None


def meta_from_session(session: Any, source: str) -> ModelMeta:
    """The :class:`ModelMeta` that ``fornet export`` embedded in the model's ``metadata_props``."""
    props = session.get_modelmeta().custom_metadata_map
    if META_KEY not in props:
        raise WeightsError(
            f"{source} has no fornet metadata (no {META_KEY!r} entry): it was not written by `fornet export`, "
            "so its classes and normalisation are unknown. Export the model with `fornet export --format onnx`."
        )
    try:
        data = json.loads(props[META_KEY])
    except (json.JSONDecodeError, RecursionError) as exc:
        raise WeightsError(f"{source}: the {META_KEY!r} metadata is not valid JSON ({type(exc).__name__}).") from None
    return ModelMeta.from_dict(data, source)


class OnnxModel(nn.Module):
    """An ONNX segmentation model behind the ``nn.Module`` interface: ``forward(x) -> logits``.

    The first graph output must be the logits (``fornet export`` guarantees it). Inputs go to
    onnxruntime as float32 on the CPU side; onnxruntime copies them to the GPU when it runs on CUDA.
    """

    def __init__(self, session: Any, source: str) -> None:
        super().__init__()
        self.session = session
        self.source = source
        first = session.get_inputs()[0]
        self.input_name: str = first.name
        # Fixed dimensions of a static export (None where the dimension is dynamic).
        self.input_shape: tuple[int | None, ...] = tuple(d if isinstance(d, int) else None for d in first.shape)
        self.output_name: str = session.get_outputs()[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = self.input_shape
        if len(expected) != x.ndim or any(e is not None and e != s for e, s in zip(expected, x.shape, strict=True)):
            shape = "x".join("?" if e is None else str(e) for e in expected)
            raise ConfigError(
                f"{self.source} was exported for fixed {shape} inputs, but got {'x'.join(map(str, x.shape))}. "
                f"Predict with --mode slide --crop {expected[-2]}x{expected[-1]} (windows of the exported size), "
                "or export with dynamic shapes (the default)."
            )
        array = x.detach().to("cpu", torch.float32).contiguous().numpy()
        (logits,) = self.session.run([self.output_name], {self.input_name: array})
        return torch.from_numpy(logits).to(x.device)


@dataclass
class LoadedOnnx:
    """Same fields as :class:`~fornet_cli.weights.resolve.LoadedModel`, plus the device onnxruntime runs on."""

    model: OnnxModel
    meta: ModelMeta
    source: str
    device: str


def load_onnx(path: str | os.PathLike, device: str = "auto", threads: int | None = None) -> LoadedOnnx:
    """Open an ONNX file written by ``fornet export`` for inference."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError(f"{path} does not exist.")
    _, resolved = providers_for(device)
    session = create_session(path, resolved, threads)
    meta = meta_from_session(session, str(path))
    return LoadedOnnx(OnnxModel(session, str(path)), meta, str(path), resolved)
