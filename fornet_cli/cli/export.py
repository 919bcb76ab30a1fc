"""`fornet export --weights W --format onnx|torchscript|hub`: a verified export of a trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..export.exporter import FORMATS, TOLERANCE, ExportOptions, ExportResult, default_output, export_model
from ..export.onnx_graph import DEFAULT_OPSET, EXPORTERS
from ..weights.resolve import load_weights
from .console import err, print_json
from .params import RegistryOpt, TrustPickleOpt, WeightsOpt, pick_weights


def export(
    weights: WeightsOpt = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help=f"{' | '.join(FORMATS)}.")] = "onnx",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output file (onnx, torchscript) or folder (hub). Default: <model>.onnx, <model>.torchscript.pt, <model>-hub/.")] = None,
    height: Annotated[int, typer.Option(min=32, help="Verification input height (and the fixed height with --static).")] = 1024,
    width: Annotated[int, typer.Option(min=32, help="Verification input width (and the fixed width with --static).")] = 2048,
    dynamic: Annotated[bool, typer.Option("--dynamic/--static", help="Free batch/height/width (Top-K counts follow the input size), or shapes fixed to HEIGHTxWIDTH for runtimes that need a constant K (TensorRT).")] = True,
    half: Annotated[bool, typer.Option("--half", help="ONNX in float16 for CUDA runtimes (inputs/outputs stay float32). Verified on CUDA when onnxruntime-gpu is present, else in float32 on the CPU.")] = False,
    opset: Annotated[int, typer.Option(help="ONNX opset (legacy exporter 11-20, dynamo 18-23).")] = DEFAULT_OPSET,
    exporter: Annotated[str, typer.Option(help=f"torch.onnx exporter: {' or '.join(EXPORTERS)}; legacy is the TorchScript-based one, the default (docs/EXPORT.md).")] = "legacy",
    all_outputs: Annotated[bool, typer.Option("--all-outputs", help="ONNX: also output the importance logit and the Top-K masks.")] = False,
    tolerance: Annotated[float | None, typer.Option(help=f"Max |exported - eager| logit difference, relative to max(1, max |logit|) (default {TOLERANCE['fp32']:g}, fp16 {TOLERANCE['fp16']:g}).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")] = False,
    license: Annotated[str, typer.Option("--license", help="hub: the licence in the model card.")] = "mit",
    registry: RegistryOpt = None,
    trust_pickle: TrustPickleOpt = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
) -> None:
    """Export a model to ONNX, TorchScript or a Hugging Face Hub folder, verified against eager PyTorch
    before anything is written to OUT."""
    options = ExportOptions(
        format=fmt,  # type: ignore[arg-type]
        height=height, width=width, dynamic=dynamic, half=half, opset=opset,
        exporter=exporter,  # type: ignore[arg-type]
        all_outputs=all_outputs, tolerance=tolerance, overwrite=overwrite, license=license,
    )
    options.require_packages()  # before loading (or downloading) any weights
    choice = pick_weights(weights, registry)
    loaded = load_weights(choice.ref, registry=registry, trust_pickle=trust_pickle)
    target = out if out is not None else default_output(loaded.meta, fmt, half)
    err.print(f"Model: {loaded.meta.architecture} ({loaded.meta.num_classes} classes) from {escape(loaded.source)}", highlight=False)
    with err.status("exporting") as status:
        result = export_model(
            loaded.model, loaded.meta, target, options, source=loaded.source,
            progress=lambda message: status.update(message),
        )
    _report(result)
    if json_out:
        print_json({**result.to_dict(), "weights": {**choice.to_dict(), "source": loaded.source}})


def _report(result: ExportResult) -> None:
    table = Table(title=f"{result.format} export verified against eager PyTorch")
    for col in ("input", "runtime", "max |diff|", "tolerance", "argmax agreement", "Top-K counts", "result"):
        table.add_column(col, justify="left" if col in ("input", "runtime") else "right")
    for c in result.checks:
        table.add_row(
            "x".join(map(str, c.shape)), c.runtime, f"{c.max_abs_diff:.2e}", f"{c.tolerance:.1e}",
            f"{100 * c.argmax_agreement:.3f}%", {None: "-", True: "equal", False: "DIFFER"}[c.topk_counts_match],
            "[green]pass[/green]" if c.passed else "[red]FAIL[/red]",
        )
    err.print(table)
    size = result.bytes / 2**20
    err.print(f"Wrote {escape(str(result.path))} ({size:.1f} MiB) in {result.seconds:.1f} s.", highlight=False)
    if result.format == "hub":
        err.print(f"Upload: {escape(result.details['upload'])}", highlight=False)
