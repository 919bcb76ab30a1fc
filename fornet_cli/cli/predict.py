"""`fornet predict INPUTS... --out DIR [--weights W]`: segmentation masks for images, folders and globs (with the
default weights when no --weights is given)."""

from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import distributed
from ..devices import resolve_device
from ..export.onnx_session import is_onnx_file, load_onnx
from ..inference.predict import FORMATS, PredictConfig, PredictSummary, predict_images
from ..inference.predictor import InferenceConfig, Predictor
from ..pipeline import release_large_buffers
from ..weights.format import ModelMeta
from ..weights.resolve import load_weights
from .console import err, image_progress, print_json
from .params import (
    ClassesOpt,
    DeviceOpt,
    RegistryOpt,
    TrustPickleOpt,
    WeightsOpt,
    inference_options,
    pick_weights,
)


@inference_options
def predict(
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders (searched recursively) and glob patterns.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder; its tree mirrors the inputs.")],
    weights: WeightsOpt = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help=f"Comma-separated: {', '.join(FORMATS)}. Several formats go to one subfolder each.")] = "trainid",
    device: DeviceOpt = "auto",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs (otherwise they are skipped).")] = False,
    allow_input_tree: Annotated[bool, typer.Option("--allow-input-tree", help="Allow --out inside an input folder.")] = False,
    registry: RegistryOpt = None,
    trust_pickle: TrustPickleOpt = False,
    classes: ClassesOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
    inference: InferenceConfig = InferenceConfig(),
) -> None:
    """Predict segmentation masks; a file that cannot be read is reported and skipped (exit code 1).

    Colour masks and overlays use the model's class colours (saved with it), or those of --classes, whose
    classes must be the model's."""
    formats = tuple(f.strip() for f in fmt.split(",") if f.strip())
    config = PredictConfig(formats=formats, overwrite=overwrite, allow_input_tree=allow_input_tree)
    choice = pick_weights(weights, registry)
    if is_onnx_file(choice.ref):  # an exported model, run by onnxruntime with its embedded metadata
        loaded = load_onnx(choice.ref, device=device)
        dev = loaded.device
    else:
        dev = _device(device)
        loaded = load_weights(choice.ref, registry=registry, trust_pickle=trust_pickle, device=dev)
    if classes is not None:
        _use_colors(loaded, classes)
    rank, world = _rank(), int(os.environ.get("WORLD_SIZE", "1"))
    release_large_buffers()  # memory stays flat over thousands of images (pipeline.py says why)
    predictor = Predictor(loaded.model, inference, notify=lambda line: err.print(line, highlight=False) if rank == 0 else None)
    if rank == 0:
        err.print(f"Model: {loaded.meta.architecture} ({loaded.meta.num_classes} classes) from {loaded.source} on {dev}", highlight=False)
    summary = _predict(predictor, loaded.meta, inputs, out, config, rank, world)
    if json_out:
        print_json({**summary.to_dict(), "weights": {**choice.to_dict(), "source": loaded.source}})
    err.print(
        f"{summary.images} images: {summary.written} written, {summary.skipped_existing} skipped (outputs exist; "
        f"--overwrite replaces them), {len(summary.failed)} failed, {summary.seconds:.1f} s "
        f"({summary.images_per_second:.2f} images/s). Output: {out}", highlight=False,
    )
    for _path, error in summary.failed:
        err.print(f"[red]Error:[/red] {error}", highlight=False)
    if summary.failed:
        raise typer.Exit(1)


def _use_colors(loaded: object, spec: str) -> None:
    """Colour by a classes file (or preset), after checking it names the model's classes."""
    from ..data.classes import check_model_classes, resolve_classes

    classes = resolve_classes(spec, None)
    meta = loaded.meta  # type: ignore[attr-defined]
    check_model_classes(meta.class_names, loaded.source, classes)  # type: ignore[attr-defined]
    meta.palette = classes.palette


def _rank() -> int:
    return int(os.environ.get("RANK", "0")) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else 0


def _device(device: str) -> Any:
    """The device; under ``torchrun`` (WORLD_SIZE > 1) also joins the process group (gloo on CPU, NCCL on CUDA,
    one GPU per process)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return distributed.setup(device).device
    return resolve_device(device)


def _predict(predictor: Predictor, meta: ModelMeta, inputs: list[str], out: Path, config: PredictConfig,
             rank: int, world: int) -> PredictSummary:
    """Predict this process's share of the images. Under ``torchrun`` rank 0 builds the runtime first (an ONNX
    export lands in the cache once, the other ranks take it from there), every rank writes its own shard, and
    rank 0 returns the merged summary while the other ranks exit here (code 1 when any image failed)."""
    if world > 1 and rank == 0:
        predictor.prepare()
    if world > 1:
        distributed.barrier()
    predictor.prepare()
    with image_progress("predict") if rank == 0 else nullcontext(None) as on_image:
        summary = predict_images(predictor, meta, inputs, out, config, on_image=on_image, ranks=(rank, world))
    summary.runtime = predictor.runtime_info.to_dict()
    if world == 1:
        return summary
    merged = PredictSummary.merged(distributed.all_gather_object(summary))  # type: ignore[arg-type]
    distributed.cleanup()
    if rank != 0:
        raise typer.Exit(1 if merged.failed else 0)
    return merged
