"""`fornet eval`: the official Cityscapes scores (or a folder data set's own classes' scores) plus hard-region
scores, as a table, as JSON and as a page (--report DIR)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..data.cityscapes import ENV_VAR
from ..devices import resolve_device
from ..evaluation.evaluate import EvaluationResult, evaluate_model
from ..evaluation.hard_regions import HardRegionConfig
from ..evaluation.report import ViewSource, write_eval_report
from ..fsutil import atomic_write_text, check_output_folder
from ..inference.predictor import InferenceConfig
from .console import err, print_json
from .eval_tables import print_tables
from .params import (
    ClassesOpt,
    DataOpt,
    DeviceOpt,
    RegistryOpt,
    TrustPickleOpt,
    WeightsOpt,
    inference_options,
    pick_weights,
)

Evaluated = tuple[EvaluationResult, str, list[list[int]], ViewSource | None]  # result, what, palette, pictures


@inference_options
def eval_command(
    predictions: Annotated[
        Path | None,
        typer.Option(
            "--predictions",
            help="Folder of labelId PNGs, one per image, named <city>_<seq>_<frame>*.png (searched recursively, "
            "as the official evaluator does); with --data folder, class-index PNGs named like the masks. Either "
            "this or a model (--weights, or the default weights).",
        ),
    ] = None,
    weights: WeightsOpt = None,
    data: DataOpt = "cityscapes",
    root: Annotated[
        Path | None,
        typer.Option(help=f"Dataset folder (default: ${ENV_VAR}; for --data synth the generated set; needed for folder)."),
    ] = None,
    classes: ClassesOpt = None,
    split: Annotated[str, typer.Option(help="Split to evaluate: gtFine/<split>, or ROOT/<split>/ for --data folder.")] = "val",
    device: DeviceOpt = "auto",
    max_images: Annotated[int | None, typer.Option(min=1, help="Evaluate only the first N images.")] = None,
    registry: RegistryOpt = None,
    trust_pickle: TrustPickleOpt = False,
    json_out: Annotated[
        str | None,
        typer.Option("--json", metavar="FILE", help="Write every score as JSON to FILE ('-' for stdout)."),
    ] = None,
    boundary_width: Annotated[
        float,
        typer.Option(min=0.5, help="Boundary IoU band width in pixels at 1024x2048 (scaled with the image size)."),
    ] = 3.0,
    hard: Annotated[
        bool, typer.Option("--hard/--no-hard", help="Compute boundary IoU, trimap mIoU and thin-class mIoU.")
    ] = True,
    per_image: Annotated[bool, typer.Option("--per-image", help="Add each image's scores to the JSON.")] = False,
    report: Annotated[
        Path | None,
        typer.Option("--report", metavar="DIR", help="Also write a page: DIR/index.html (per-class IoU, confusion "
                     "matrix, hard regions, the worst images), DIR/metrics.json and its pictures."),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Threads decoding and counting images (default: CPUs, at most 8).")
    ] = None,
    inference: InferenceConfig = InferenceConfig(),
) -> None:
    """Evaluate a model (--weights, or the default weights), or a folder of predictions: the official Cityscapes
    scores (IoU, iIoU, categories), or for a folder data set its own classes' IoU, plus hard-region scores
    (boundary IoU, trimap mIoU, thin classes, selector error recall)."""
    if predictions is not None and weights is not None:
        raise typer.BadParameter("give either --predictions DIR or --weights W, not both.", param_hint="--predictions/--weights")
    if data not in ("cityscapes", "synth", "folder"):
        raise typer.BadParameter(f"{data!r}: use cityscapes, synth or folder.", param_hint="--data")
    json_path = _output_path(json_out)
    if report is not None:
        check_output_folder(report, [p for p in (root, predictions) if p is not None])
    hard_config = HardRegionConfig(boundary_width=boundary_width) if hard else None
    keep = per_image or report is not None
    choice = None
    with _progress() as on_progress:
        if predictions is not None:
            result, what, palette, views = _evaluate_files(predictions, data, root, classes, split, hard_config, keep,
                                                           workers, on_progress)
        else:
            choice = pick_weights(weights, registry)
            result, what, palette, views = _evaluate_weights(
                choice.ref, data, root, classes, split, inference, hard_config, keep, max_images, registry,
                trust_pickle, resolve_device(device), on_progress,
            )
    print_tables(result, what)
    extra = {} if choice is None else {"weights": choice.to_dict()}
    if report is not None:
        page = write_eval_report(result, report, palette, views, f"fornet eval: {what}", extra=extra)
        err.print(f"Report: {page}", highlight=False)
    if json_out is not None:
        document = {**result.to_dict(), **extra}
        if not per_image:
            document.pop("per_image", None)
        _write_json(document, json_path)


def _evaluate_weights(
    weights: str,
    data: str,
    root: Path | None,
    classes_spec: str | None,
    split: str,
    inference: InferenceConfig,
    hard: HardRegionConfig | None,
    per_image: bool,
    max_images: int | None,
    registry: Path | None,
    trust_pickle: bool,
    device: str,
    progress: Callable[[int, int], None] | None,
) -> Evaluated:
    from ..data.transforms import TransformSettings, eval_transforms
    from ..evaluation.report import model_views
    from ..evaluation.space import space_for
    from ..inference.predictor import Predictor
    from ..weights.resolve import load_weights

    if data == "synth" and root is None:
        from ..data.synth import default_synth_root, ensure_synth_dataset
        from ..training.config import recipe

        quick = recipe("cpu-quick")
        args = (quick.synth_train, quick.synth_val, quick.synth_size, quick.seed)
        root = ensure_synth_dataset(default_synth_root(*args), *args)
    classes, open_split = _dataset(data, root, classes_spec)  # a bad data set fails before the model loads
    loaded = load_weights(weights, registry=registry, trust_pickle=trust_pickle, device=device)
    _check_classes(loaded, classes)
    settings = TransformSettings(mean=tuple(loaded.meta.mean), std=tuple(loaded.meta.std))  # type: ignore[arg-type]
    dataset = open_split(split, eval_transforms(settings))
    err.print(f"Model {loaded.meta.architecture} from {loaded.source} on {device}; {len(dataset)} images", highlight=False)
    predictor = Predictor(loaded.model, inference, notify=lambda line: err.print(line, highlight=False))
    result = evaluate_model(loaded.model, dataset, inference, hard=hard, per_image=per_image, limit=max_images,
                            progress=progress, space=space_for(classes.names), predictor=predictor)
    result.source["weights"] = loaded.source
    views = model_views(loaded, open_split(split, None), predictor.predict)
    return result, f"{loaded.meta.architecture} on {data} {split}", _palette(loaded.meta.palette, classes), views


def _dataset(data: str, root: Path | None, spec: str | None) -> tuple[Any, Callable[[str, Any], Any]]:
    """The data set's classes and a function opening one of its splits with a transform."""
    from ..data.cityscapes import CityscapesDataset
    from ..data.classes import cityscapes_classes, resolve_classes
    from ..data.folder import FolderDataset, check_root

    if data == "folder":
        folder = check_root(root)
        classes = resolve_classes(spec, folder)
        return classes, lambda split, transform: FolderDataset(folder, split, classes, transform)
    if spec is not None:
        raise typer.BadParameter("--classes names a folder data set's classes (--data folder).", param_hint="--classes")
    return cityscapes_classes(), lambda split, transform: CityscapesDataset(root, split, transform=transform)


def _check_classes(loaded: Any, classes: Any) -> None:
    from ..data.classes import check_model_classes

    check_model_classes(loaded.meta.class_names, loaded.source, classes)


def _palette(model_palette: list[list[int]], classes: Any) -> list[list[int]]:
    return model_palette or classes.palette


def _evaluate_files(
    predictions: Path, data: str, root: Path | None, spec: str | None, split: str, hard: HardRegionConfig | None,
    per_image: bool, workers: int | None, progress: Callable[[int, int], None] | None,
) -> Evaluated:
    """Prediction files against a Cityscapes tree (labelIds) or a folder data set (class indices)."""
    from ..evaluation import report as pictures
    from ..evaluation.evaluate import evaluate_predictions

    if data == "folder":
        from ..data.folder import FolderDataset
        from ..evaluation.folder_eval import evaluate_folder_predictions, match_folder_predictions

        classes, _ = _dataset(data, root, spec)
        assert root is not None
        result = evaluate_folder_predictions(predictions, root, split, classes, hard=hard, per_image=per_image,
                                             progress=progress)
        pairs = match_folder_predictions(predictions, FolderDataset(root, split, classes).samples)
        views = pictures.folder_prediction_views(pairs, classes)
        return result, f"{predictions.name} vs {root.name}/{split}", classes.palette, views
    from ..data.classes import cityscapes_classes
    from ..data.prediction_files import find_ground_truth, match_predictions

    root = _dataset_root(root)
    result = evaluate_predictions(predictions, root, split, hard=hard, per_image=per_image, workers=workers,
                                  progress=progress)
    views = pictures.cityscapes_prediction_views(match_predictions(predictions, find_ground_truth(root, split), False),
                                                 root, split)
    return result, f"{predictions.name} vs gtFine/{split}", cityscapes_classes().palette, views


def _dataset_root(root: Path | None) -> Path:
    if root is not None:
        return root
    env = os.environ.get(ENV_VAR)
    if not env:
        raise typer.BadParameter(f"give the Cityscapes folder with --root (or set ${ENV_VAR}).", param_hint="--root")
    return Path(env)


def _output_path(json_out: str | None) -> Path | None:
    if json_out is None or json_out == "-":
        return None
    path = Path(json_out)
    if path.suffix.lower() == ".png":  # never let a typo overwrite a label image
        raise typer.BadParameter(f"{json_out} looks like an image; give a .json file name.", param_hint="--json")
    if path.is_dir():
        raise typer.BadParameter(f"{json_out} is a folder; give a file name.", param_hint="--json")
    return path


@contextmanager
def _progress() -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on an interactive stderr; nothing when it is redirected (logs stay clean)."""
    if not err.is_terminal:
        yield None
        return
    bar = Progress(
        TextColumn("Evaluating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True
    )
    with bar:
        task = bar.add_task("eval", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _write_json(data: dict[str, Any], path: Path | None) -> None:
    """JSON to stdout (path None) or atomically to a file (temporary file + os.replace)."""
    if path is None:
        print_json(data)
        return
    atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")
    err.print(f"Wrote {path}")
