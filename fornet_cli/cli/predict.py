"""`fornet predict INPUTS... --out DIR --weights W`: segmentation masks for images, folders and globs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..devices import resolve_device
from ..export.onnx_session import is_onnx_file, load_onnx
from ..inference.predict import FORMATS, PredictConfig, predict_images
from ..inference.predictor import InferenceConfig, Predictor
from ..weights.resolve import load_weights
from .console import err, image_progress, print_json
from .params import (
    DeviceOpt,
    RegistryOpt,
    TrustPickleOpt,
    inference_options,
)


@inference_options
def predict(
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders (searched recursively) and glob patterns.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder; its tree mirrors the inputs.")],
    weights: Annotated[str, typer.Option("--weights", "-w", help="Registry name, hf://org/repo or hf://org/repo@rev, a checkpoint folder, a run folder, a file, or an ONNX model from fornet export.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help=f"Comma-separated: {', '.join(FORMATS)}. Several formats go to one subfolder each.")] = "trainid",
    device: DeviceOpt = "auto",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs (otherwise they are skipped).")] = False,
    allow_input_tree: Annotated[bool, typer.Option("--allow-input-tree", help="Allow --out inside an input folder.")] = False,
    registry: RegistryOpt = None,
    trust_pickle: TrustPickleOpt = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
    inference: InferenceConfig = InferenceConfig(),
) -> None:
    """Predict segmentation masks; a file that cannot be read is reported and skipped (exit code 1)."""
    formats = tuple(f.strip() for f in fmt.split(",") if f.strip())
    config = PredictConfig(formats=formats, overwrite=overwrite, allow_input_tree=allow_input_tree)
    if is_onnx_file(weights):  # an exported model, run by onnxruntime with its embedded metadata
        loaded = load_onnx(weights, device=device)
        dev = loaded.device
    else:
        dev = resolve_device(device)
        loaded = load_weights(weights, registry=registry, trust_pickle=trust_pickle, device=dev)
    predictor = Predictor(loaded.model, inference)
    err.print(f"Model: {loaded.meta.architecture} ({loaded.meta.num_classes} classes) from {loaded.source} on {dev}", highlight=False)
    with image_progress("predict") as on_image:
        summary = predict_images(predictor, loaded.meta, inputs, out, config, on_image=on_image)
    if json_out:
        print_json(summary.to_dict())
    err.print(
        f"{summary.images} images: {summary.written} written, {summary.skipped_existing} skipped (outputs exist; "
        f"--overwrite replaces them), {len(summary.failed)} failed, {summary.seconds:.1f} s "
        f"({summary.images_per_second:.2f} images/s). Output: {out}", highlight=False,
    )
    for _path, error in summary.failed:
        err.print(f"[red]Error:[/red] {error}", highlight=False)
    if summary.failed:
        raise typer.Exit(1)
