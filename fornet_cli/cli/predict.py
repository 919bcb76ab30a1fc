"""`fornet predict INPUTS... --out DIR --weights W`: segmentation masks for images, folders and globs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..engine.inference import MS_SCALES, InferenceConfig, Predictor
from ..engine.onnx_runtime import is_onnx_file, load_onnx
from ..engine.predict import FORMATS, PredictConfig, predict_images
from ..engine.weights import load_weights
from .console import err, print_json
from .params import parse_size


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def predict(
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders (searched recursively) and glob patterns.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder; its tree mirrors the inputs.")],
    weights: Annotated[str, typer.Option("--weights", "-w", help="Registry name, hf://org/repo or hf://org/repo@rev, a checkpoint folder, a run folder, a file, or an ONNX model from fornet export.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help=f"Comma-separated: {', '.join(FORMATS)}. Several formats go to one subfolder each.")] = "trainid",
    mode: Annotated[str, typer.Option(help="whole (the full image at once) or slide (windows of --crop every --stride).")] = "whole",
    crop: Annotated[str, typer.Option(help="Sliding-window size HxW.")] = "1024x1024",
    stride: Annotated[str, typer.Option(help="Sliding-window step HxW.")] = "768x768",
    tta: Annotated[bool, typer.Option("--tta", help=f"Multi-scale {MS_SCALES} + flip test-time augmentation.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    amp: Annotated[bool, typer.Option("--amp/--no-amp", help="Half precision on CUDA.")] = True,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs (otherwise they are skipped).")] = False,
    allow_input_tree: Annotated[bool, typer.Option("--allow-input-tree", help="Allow --out inside an input folder.")] = False,
    registry: Annotated[Path | None, typer.Option(help="An extra weights.toml.")] = None,
    trust_pickle: Annotated[bool, typer.Option("--trust-pickle", help="Allow a pickled .pt/.pth file (read with weights_only=True).")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
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
    inference = InferenceConfig(
        mode=mode, crop_size=parse_size(crop), stride=parse_size(stride),  # type: ignore[arg-type]
        scales=MS_SCALES if tta else (1.0,), flip=tta, amp=amp,
    )
    predictor = Predictor(loaded.model, inference)
    err.print(f"Model: {loaded.meta.architecture} ({loaded.meta.num_classes} classes) from {loaded.source} on {dev}", highlight=False)
    progress = Progress(TextColumn("[bold]predict"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[name]}"),
                        TimeRemainingColumn(), console=err)
    with progress:
        task = progress.add_task("predict", total=None, name="")

        def on_image(done: int, total: int, path: Path, status: str) -> None:
            progress.update(task, completed=done, total=total, name=path.name)
            if status == "failed":
                progress.console.print(f"[red]failed[/red] {path}", highlight=False)

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
