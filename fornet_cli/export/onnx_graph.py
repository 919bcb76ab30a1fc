"""ONNX graphs from PyTorch models: the two torch exporters, FoR-Net's stable sort, metadata, fp16.

FoR-Net ranks the importance grid with ``torch.argsort(..., stable=True)``. Neither torch exporter maps
the stable sort (the TorchScript-based one refuses it, the dynamo one has no translation), so both get
the same mapping here: ONNX ``TopK`` with ``k`` = the length of the sorted axis, read from the tensor's
shape so that it follows a dynamic input size. ``TopK`` breaks ties by the lower index (ONNX spec), which
is exactly a stable descending sort, so the exported Top-K masks equal eager PyTorch's.

The TorchScript-based exporter (``dynamo=False``) is the default; docs/EXPORT.md says why.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from ..errors import ConfigError, ExportError
from ..extras import require
from ..model.outputs import FocusContext, logits_of

Exporter = Literal["legacy", "dynamo"]
EXPORTERS: tuple[str, ...] = ("legacy", "dynamo")
DEFAULT_OPSET = 18
OPSET_RANGE: dict[str, tuple[int, int]] = {"legacy": (11, 20), "dynamo": (18, 23)}


class LogitsOnly(nn.Module):
    """Any segmentation model reduced to ``image -> logits`` (torchvision's dict, FornetOutput, ...).

    ``half`` runs the model in float16 behind float32 inputs and outputs, so an fp16 graph has the same
    interface as an fp32 one.
    """

    def __init__(self, model: nn.Module, half: bool = False) -> None:
        super().__init__()
        self.model = model
        self.half_precision = half

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.half() if self.half_precision else image
        return _float32(logits_of(self.model(x)))


class AllOutputs(nn.Module):
    """A FoR-Net model with every output: logits, importance logit z, Top-K masks (for inspection/tests)."""

    def __init__(self, model: nn.Module, half: bool = False) -> None:
        super().__init__()
        if not hasattr(model, "forward_all"):
            raise ConfigError(
                f"{type(model).__name__} is not a FoR-Net model: it has no importance or masks to export."
            )
        self.model = model
        self.half_precision = half

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        x = image.half() if self.half_precision else image
        out = self.model.forward_all(x)
        return _float32(out.logits), _float32(out.importance), _float32(out.masks), _float32(out.pooled)


class FocusTile(nn.Module):
    """A FoR-Net model run on a tile of a larger image (focus inference): ``(image, pooled, thresholds) ->
    logits``, with the whole image's global-context input and Top-K thresholds (``FocusContext``)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, pooled: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
        return _float32(self.model.forward_all(image, FocusContext(pooled, thresholds)).logits)


def _float32(t: torch.Tensor) -> torch.Tensor:
    """``t`` as float32, without a Cast node when it is float32 already: onnxruntime runs a float-to-float Cast
    as a copy, which for full-size logits (19 x 1024 x 2048) cost 40-85 ms per image, a tenth of the graph."""
    return t if t.dtype == torch.float32 else t.float()


ALL_OUTPUTS: tuple[str, ...] = ("logits", "importance", "masks", "pooled")


def output_names(module: nn.Module) -> list[str]:
    return list(ALL_OUTPUTS) if isinstance(module, AllOutputs) else ["logits"]


def example_inputs(module: nn.Module, image: torch.Tensor) -> dict[str, torch.Tensor]:
    """The graph's inputs by name, for tracing: the image, and a focus tile's context."""
    if not isinstance(module, FocusTile):
        return {"image": image}
    b = image.shape[0]
    channels = module.model.config.channels
    return {"image": image, "pooled": torch.zeros(b, channels, 1, 1),
            "thresholds": torch.zeros(b, len(module.model.topk_ratios))}


def check_opset(exporter: str, opset: int) -> None:
    if exporter not in EXPORTERS:
        raise ConfigError(f"Unknown exporter {exporter!r}; choose from {', '.join(EXPORTERS)}.")
    lo, hi = OPSET_RANGE[exporter]
    if not lo <= opset <= hi:
        raise ConfigError(f"The {exporter} exporter writes ONNX opsets {lo} to {hi}; got --opset {opset}.")


def build_graph(
    module: nn.Module,
    path: Path,
    example: torch.Tensor,
    *,
    dynamic: bool = True,
    opset: int = DEFAULT_OPSET,
    exporter: Exporter = "legacy",
) -> None:
    """Write ``module`` (in eval mode, on the CPU) as an ONNX graph with input ``image`` to ``path``.

    ``dynamic``: batch, height and width are free dimensions; otherwise the graph is fixed to
    ``example``'s shape (what TensorRT and other static runtimes want).
    """
    check_opset(exporter, opset)
    require("onnx", "ONNX export")
    names = output_names(module)
    module.eval()
    log = io.StringIO()
    try:
        with _quiet(log), torch.no_grad():
            if exporter == "legacy":
                _legacy(module, path, example, names, dynamic, opset)
            else:
                _dynamo(module, path, example, names, dynamic, opset)
    except (ExportError, ConfigError):
        raise
    except Exception as exc:  # the exporters raise many types; the message is what matters
        detail = str(exc).strip().splitlines()[0][:400] if str(exc).strip() else type(exc).__name__
        other = "dynamo" if exporter == "legacy" else "legacy"
        raise ExportError(
            f"The {exporter} ONNX exporter failed ({type(exc).__name__}: {detail}). Try --exporter {other}, "
            "or rerun with FORNET_DEBUG=1 and report the traceback."
        ) from exc


def _dynamic_axes(inputs: Sequence[str], names: Sequence[str]) -> dict[str, dict[int, str]]:
    axes: dict[str, dict[int, str]] = {"image": {0: "batch", 2: "height", 3: "width"}}
    for name in [*inputs[1:], *names]:
        if name == "logits":
            axes[name] = {0: "batch", 2: "height", 3: "width"}
        elif name in ("importance", "masks"):  # they live on the feature grid
            axes[name] = {0: "batch", 2: "grid_h", 3: "grid_w"}
        else:  # pooled, thresholds: one row per image
            axes[name] = {0: "batch"}
    return axes


def _legacy(module: nn.Module, path: Path, example: torch.Tensor, names: list[str], dynamic: bool, opset: int) -> None:
    inputs = example_inputs(module, example)
    with _stable_sort_symbolic(opset):
        torch.onnx.export(
            module,
            tuple(inputs.values()),
            str(path),
            dynamo=False,
            input_names=list(inputs),
            output_names=names,
            opset_version=opset,
            dynamic_axes=_dynamic_axes(list(inputs), names) if dynamic else None,
            do_constant_folding=True,  # folds BatchNorm into the convolutions
        )


def _dynamo(module: nn.Module, path: Path, example: torch.Tensor, names: list[str], dynamic: bool, opset: int) -> None:
    require("onnxscript", "The dynamo ONNX exporter")
    from torch.export import Dim

    if isinstance(module, FocusTile):
        raise ConfigError("Focus tile graphs are exported with the legacy exporter only.")

    shapes = ({0: Dim("batch"), 2: Dim("height"), 3: Dim("width")},) if dynamic else None
    program = torch.onnx.export(
        module,
        (example,),
        dynamo=True,
        input_names=["image"],
        output_names=names,
        opset_version=opset,
        dynamic_shapes=shapes,
        custom_translation_table=_dynamo_translations(),
        optimize=True,
        verbose=False,
    )
    program.save(str(path), external_data=False)  # one self-contained file (fp32 r101 is ~200 MB, < 2 GB)


def _dynamo_translations() -> dict[Any, Any]:
    from onnxscript import opset18 as op  # torchlib's own opset; the exporter converts to the target opset

    def sort_stable(self: Any, *, stable: Any = None, dim: int = -1, descending: bool = False) -> tuple[Any, Any]:
        k = op.Shape(self, start=-1) if dim == -1 else op.Shape(self, start=dim, end=dim + 1)
        values, indices = op.TopK(self, k, axis=dim, largest=descending, sorted=True)
        return values, indices

    def argsort_stable(self: Any, *, stable: Any = None, dim: int = -1, descending: bool = False) -> Any:
        return sort_stable(self, stable=stable, dim=dim, descending=descending)[1]

    return {torch.ops.aten.sort.stable: sort_stable, torch.ops.aten.argsort.stable: argsort_stable}


def _argsort_symbolic(g: Any, self: Any, *args: Any) -> Any:
    """``aten::argsort`` (``(dim, descending)``) and ``aten::argsort.stable`` (``(stable, dim, descending)``)."""
    from torch.onnx import symbolic_helper as sh

    dim_value, descending_value = args[-2], args[-1]
    dim = sh._parse_arg(dim_value, "i")
    descending = sh._parse_arg(descending_value, "b")
    shape = g.op("Shape", self)
    k = g.op("Gather", shape, g.op("Constant", value_t=torch.tensor([dim], dtype=torch.long)), axis_i=0)
    _, indices = g.op("TopK", self, k, axis_i=dim, largest_i=int(descending), sorted_i=1, outputs=2)
    return indices


@contextlib.contextmanager
def _stable_sort_symbolic(opset: int) -> Iterator[None]:
    """Register the argsort mapping for this export only (the registry is process-wide)."""
    torch.onnx.register_custom_op_symbolic("aten::argsort", _argsort_symbolic, opset)
    try:
        yield
    finally:
        torch.onnx.unregister_custom_op_symbolic("aten::argsort", opset)


@contextlib.contextmanager
def _quiet(log: io.StringIO) -> Iterator[None]:
    """Keep the exporters' progress prints off stdout (it carries --json) and their warnings off stderr.

    The TorchScript exporter's DeprecationWarning is expected (docs/EXPORT.md); tracer warnings are
    about Python values that the verification step checks anyway.
    """
    with warnings.catch_warnings(), contextlib.redirect_stdout(log):
        warnings.simplefilter("ignore")
        yield


# ------------------------------------------------------------------------------------------------ metadata


def set_metadata(path: Path, props: dict[str, str]) -> None:
    """Replace the model's ``metadata_props`` with ``props`` (rewrites the file in place)."""
    onnx = require("onnx", "ONNX export")
    model = onnx.load(str(path))
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, props)
    onnx.save(model, str(path))


# ------------------------------------------------------------------------------------------------ fp16


def upcast_fp16(path: Path, target: Path) -> None:
    """Write a copy of an fp16 graph with every float16 type, initialiser, constant and Cast made float32.

    It computes what the fp16 graph computes, with its fp16-rounded weights, in fp32 arithmetic: the
    check that runs on a CPU (onnxruntime's CPU provider lacks most fp16 kernels). Arithmetic overflow
    in fp16 is the one thing it cannot see; that needs a CUDA check.
    """
    onnx = require("onnx", "ONNX export")
    model = onnx.load(str(path))
    _upcast_graph(model.graph, onnx)
    onnx.save(model, str(target))


def _upcast_graph(graph: Any, onnx: Any) -> None:
    fp16, fp32 = onnx.TensorProto.FLOAT16, onnx.TensorProto.FLOAT
    for i, tensor in enumerate(graph.initializer):
        if tensor.data_type == fp16:
            graph.initializer[i].CopyFrom(_to_fp32(tensor, onnx))
    for value in [*graph.input, *graph.output, *graph.value_info]:
        if value.type.tensor_type.elem_type == fp16:
            value.type.tensor_type.elem_type = fp32
    for node in graph.node:
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to" and attr.i == fp16:
                attr.i = fp32
            elif attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == fp16:
                attr.t.CopyFrom(_to_fp32(attr.t, onnx))
            elif attr.type == onnx.AttributeProto.GRAPH:
                _upcast_graph(attr.g, onnx)


def _to_fp32(tensor: Any, onnx: Any) -> Any:
    import numpy as np

    return onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(tensor).astype(np.float32), tensor.name)
