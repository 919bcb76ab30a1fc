"""``fornet export``: ONNX, TorchScript or a Hub folder, each verified before it lands at its path.

Every export is written to a temporary path next to the target, run by its own runtime (onnxruntime,
``torch.jit.load``, ``load_pretrained``) on synthetic street scenes of a real size, compared with eager
PyTorch (``export_check.py``), and only then moved into place with ``os.replace``. A failed check raises
:class:`ExportError` and leaves the output path as it was. docs/EXPORT.md has the details.
"""

from __future__ import annotations

import copy
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from .._version import __version__
from ..errors import ConfigError, ExportError
from ..extras import ONNX_PACKAGES, require_all
from ..fsutil import atomic_path
from ..weights.format import ModelMeta
from .hub_folder import export_hub
from .onnx_graph import (
    ALL_OUTPUTS,
    DEFAULT_OPSET,
    AllOutputs,
    LogitsOnly,
    build_graph,
    check_opset,
    set_metadata,
    upcast_fp16,
)
from .onnx_session import META_KEY, create_session, providers_for
from .verify import (
    TOLERANCE,
    Check,
    compare,
    eager,
    require_passed,
    scene_batch,
    trace_shape,
    verification_shapes,
)

__all__ = [
    "FORMATS",
    "TOLERANCE",
    "Check",
    "ExportOptions",
    "ExportResult",
    "default_output",
    "export_model",
    "export_onnx",
    "scene_batch",
]

Format = Literal["onnx", "torchscript", "hub"]
FORMATS: tuple[str, ...] = ("onnx", "torchscript", "hub")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt", "hub": ""}
TORCHSCRIPT_META = "fornet.json"  # the ModelMeta, stored as an extra file inside the TorchScript archive
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ExportOptions:
    """How to export. ``height``/``width``: the verification size (and the fixed size of a static export)."""

    format: Format = "onnx"
    height: int = 1024
    width: int = 2048
    dynamic: bool = True
    half: bool = False
    opset: int = DEFAULT_OPSET
    exporter: Literal["legacy", "dynamo"] = "legacy"
    all_outputs: bool = False  # ONNX: also output the importance logit and the Top-K masks
    tolerance: float | None = None  # override the max-abs-diff tolerance (see export_check.TOLERANCE)
    overwrite: bool = False
    license: str = "mit"  # hub: the model card's licence field

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(f"Unknown export format {self.format!r}; choose from {', '.join(FORMATS)}.")
        if self.height < 32 or self.width < 32:
            raise ConfigError(f"Export size {self.height}x{self.width} is too small; use at least 32x32.")
        if self.half and self.format != "onnx":
            raise ConfigError("--half applies to ONNX exports only (TorchScript and Hub folders keep float32).")
        if self.all_outputs and self.format != "onnx":
            raise ConfigError("--all-outputs applies to ONNX exports only.")
        if self.format == "onnx":
            check_opset(self.exporter, self.opset)
        if self.tolerance is not None and not self.tolerance > 0:
            raise ConfigError(f"--tolerance must be positive; got {self.tolerance}.")

    def require_packages(self) -> None:
        """MissingDependencyError now, naming the extra, when this export needs a package that is missing."""
        if self.format == "onnx":
            packages = (*ONNX_PACKAGES, "onnxscript") if self.exporter == "dynamo" else ONNX_PACKAGES
            require_all(packages, f"fornet export --format onnx (--exporter {self.exporter})")


@dataclass
class ExportResult:
    format: str
    path: Path
    architecture: str
    checks: list[Check]
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        if self.path.is_dir():
            return sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())
        return self.path.stat().st_size

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "path": str(self.path),
            "architecture": self.architecture,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 2),
            "verified": all(c.passed for c in self.checks),
            "checks": [c.to_dict() for c in self.checks],
            **self.details,
        }


def default_output(meta: ModelMeta, fmt: str, half: bool = False) -> Path:
    """``fornet_r18.onnx``, ``fornet_r18-fp16.onnx``, ``fornet_r18.torchscript.pt`` or ``fornet_r18-hub/``."""
    name = meta.architecture or "fornet"
    if fmt == "hub":
        return Path(f"{name}-hub")
    return Path(f"{name}{'-fp16' if half else ''}{SUFFIXES[fmt]}")


def export_model(
    model: nn.Module,
    meta: ModelMeta,
    out: str | Path,
    options: ExportOptions = ExportOptions(),
    *,
    source: str | None = None,
    progress: Progress | None = None,
) -> ExportResult:
    """Export and verify ``model`` (with its ``meta``) to ``out`` in ``options.format``.

    ``source``: where the weights came from (a run folder's best metrics go into the Hub model card).
    """
    if options.format == "onnx":
        return export_onnx(model, out, options, meta=meta, progress=progress)
    out = Path(out)
    _check_target(out, options)
    say = progress or (lambda message: None)
    model = model.to("cpu").eval()
    start = time.perf_counter()
    if options.format == "torchscript":
        checks, details = _export_torchscript(model, meta, out, options, say)
    else:
        checks, details = export_hub(
            model, meta, out, height=options.height, width=options.width, license=options.license,
            tolerance=options.tolerance, source=source, progress=say,
        )
    return ExportResult(options.format, out, meta.architecture, checks, time.perf_counter() - start, details)


def _check_target(out: Path, options: ExportOptions) -> None:
    if options.format == "hub":
        if out.exists() and not out.is_dir():
            raise ConfigError(f"{out} is a file; a Hub export writes a folder. Choose another --out.")
        if out.is_dir() and any(out.iterdir()) and not options.overwrite:
            raise ConfigError(
                f"{out} exists and is not empty. Pass --overwrite to replace it, or choose another --out."
            )
        return
    if out.is_dir():
        raise ConfigError(f"{out} is a folder; give a file path for the {options.format} export.")
    if out.exists() and not options.overwrite:
        raise ConfigError(f"{out} exists. Pass --overwrite to replace it, or choose another --out.")


# ------------------------------------------------------------------------------------------------ ONNX


def export_onnx(
    model: nn.Module,
    out: str | Path,
    options: ExportOptions = ExportOptions(),
    *,
    meta: ModelMeta | None = None,
    progress: Progress | None = None,
) -> ExportResult:
    """Export any segmentation model (FoR-Net or a peer) to a verified ONNX file.

    Without ``meta`` (a peer model) no fornet metadata is embedded and ImageNet mean/std normalise
    the verification images.
    """
    out = Path(out)
    options = replace(options, format="onnx")
    options.require_packages()
    _check_target(out, options)
    say = progress or (lambda message: None)
    model = model.to("cpu").eval()
    start = time.perf_counter()
    graph_model = copy.deepcopy(model)
    if options.half:
        graph_model.half()
        if hasattr(graph_model, "selector"):
            graph_model.selector.float()  # FoR-Net ranks importance in float32 by design (docs/MODEL.md)
    wrapper = AllOutputs(graph_model, options.half) if options.all_outputs else LogitsOnly(graph_model, options.half)
    example = torch.zeros(trace_shape(options.height, options.width, options.dynamic))  # fp32 even for fp16
    with atomic_path(out) as tmp:
        say(f"exporting ONNX ({options.exporter} exporter, opset {options.opset}, "
            f"{'dynamic' if options.dynamic else 'static ' + 'x'.join(map(str, example.shape))} shapes"
            f"{', fp16' if options.half else ''})")
        build_graph(wrapper, tmp, example, dynamic=options.dynamic, opset=options.opset, exporter=options.exporter)
        if meta is not None:
            set_metadata(tmp, onnx_metadata(meta, options))
        checks = _verify_onnx(model, meta, tmp, options, say)
        require_passed(checks, "exported ONNX model")
    details = {"exporter": options.exporter, "opset": options.opset, "dynamic": options.dynamic, "half": options.half,
               "outputs": list(ALL_OUTPUTS) if options.all_outputs else ["logits"]}
    name = meta.architecture if meta is not None else type(model).__name__
    return ExportResult("onnx", out, name, checks, time.perf_counter() - start, details)


def onnx_metadata(meta: ModelMeta, options: ExportOptions) -> dict[str, str]:
    """``metadata_props``: the full ModelMeta (``fornet.meta``) and the essentials as separate entries."""
    outputs = "logits: B x num_classes x H x W float32"
    if options.all_outputs:
        outputs += "; importance: B x 1 x h x w; masks: B x branches x h x w; pooled: B x C x 1 x 1"
    exporter = "TorchScript-based" if options.exporter == "legacy" else "dynamo"
    return {
        META_KEY: json.dumps(meta.to_dict()),
        "model_name": meta.architecture,
        "class_names": json.dumps(meta.class_names),
        "palette": json.dumps(meta.palette),
        "mean": json.dumps(meta.mean),
        "std": json.dumps(meta.std),
        "topk_ratios": json.dumps(meta.topk_ratios),
        "num_classes": str(meta.num_classes),
        "input": "image: B x 3 x H x W float32 RGB, (pixel / 255 - mean) / std",
        "output": outputs,
        "precision": "fp16" if options.half else "fp32",
        "dynamic_shapes": str(options.dynamic).lower(),
        "exporter": f"torch.onnx ({exporter}), torch {torch.__version__}",
        "fornet_version": __version__,
    }


def _verify_onnx(
    model: nn.Module, meta: ModelMeta | None, path: Path, options: ExportOptions, say: Progress
) -> list[Check]:
    kind = "fp16" if options.half else "fp32"
    device, run_path, runtime = "cpu", path, "onnxruntime CPU"
    if options.half:
        # fp16 kernels exist on onnxruntime's CUDA provider; on a CPU-only machine the fp16 graph is
        # checked with its float16 types made float32 (docs/EXPORT.md).
        _, device = providers_for("auto")
        if device == "cuda":
            runtime = "onnxruntime CUDA, fp16"
        else:
            run_path = path.with_name(path.name + ".fp32-check")
            upcast_fp16(path, run_path)
            runtime = "onnxruntime CPU, fp16 graph upcast to fp32"
    try:
        session = create_session(run_path, device)
        normalisation = meta or ModelMeta("model", 1, ["x"], [])  # ImageNet mean/std
        checks = []
        for shape in verification_shapes(options.height, options.width, options.dynamic):
            say(f"verifying at {'x'.join(map(str, shape))} against eager PyTorch")
            x = scene_batch(shape[0], shape[2], shape[3], normalisation)
            outputs = session.run(None, {"image": x.numpy()})
            check = compare(eager(model, x), outputs[0], kind, runtime, options.tolerance, x.shape)
            if options.all_outputs:  # the Top-K masks must hold exactly eager PyTorch's K per branch
                with torch.inference_mode():
                    counts = model.forward_all(x).masks.flatten(2).sum(2).float()  # type: ignore[operator]
                exported = torch.from_numpy(outputs[2]).flatten(2).sum(2).float()
                check = replace(check, topk_counts_match=bool(torch.equal(counts, exported)))
            checks.append(check)
        return checks
    finally:
        if run_path != path:
            run_path.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------------ TorchScript


def _export_torchscript(
    model: nn.Module, meta: ModelMeta, out: Path, options: ExportOptions, say: Progress
) -> tuple[list[Check], dict[str, Any]]:
    wrapper = LogitsOnly(copy.deepcopy(model))
    example = torch.zeros(trace_shape(options.height, options.width, options.dynamic))
    say(f"tracing TorchScript at {'x'.join(map(str, example.shape))}")
    # torch.jit warns that it is deprecated upstream; it is still what LibTorch loads (docs/EXPORT.md).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with torch.no_grad():
                traced = torch.jit.trace(wrapper, example, check_trace=False)
        except Exception as exc:
            detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            message = f"TorchScript tracing failed ({type(exc).__name__}: {detail}). Try --format onnx."
            raise ExportError(message) from exc
    with atomic_path(out) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.jit.save(traced, str(tmp), _extra_files={TORCHSCRIPT_META: json.dumps(meta.to_dict())})
            loaded = torch.jit.load(str(tmp), map_location="cpu")
        checks = []
        for shape in verification_shapes(options.height, options.width, options.dynamic):
            say(f"verifying at {'x'.join(map(str, shape))} with torch.jit.load")
            x = scene_batch(shape[0], shape[2], shape[3], meta)
            with torch.inference_mode():
                got = loaded(x)
            checks.append(compare(eager(model, x), got, "fp32", "torch.jit.load", options.tolerance, x.shape))
        require_passed(checks, "TorchScript model")
    return checks, {"dynamic": options.dynamic}
