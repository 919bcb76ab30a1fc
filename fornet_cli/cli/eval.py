"""`fornet eval`: the official Cityscapes scores plus hard-region scores, as a table and as JSON."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..data.cityscapes import ENV_VAR
from ..data.labels import CATEGORIES, CLASS_NAMES, INSTANCE_CLASS_NAMES
from ..devices import resolve_device
from ..evaluation.evaluate import EvaluationResult, evaluate_model, evaluate_predictions
from ..evaluation.hard_regions import HardRegionConfig
from ..fmt import pct
from ..fsutil import atomic_write_text
from ..inference.predictor import InferenceConfig
from .console import err, print_json
from .params import (
    DeviceOpt,
    RegistryOpt,
    TrustPickleOpt,
    inference_options,
)


@inference_options
def eval_command(
    predictions: Annotated[
        Path | None,
        typer.Option(
            "--predictions",
            help="Folder of labelId PNGs, one per image, named <city>_<seq>_<frame>*.png (searched recursively, "
            "as the official evaluator does). Either this or --weights.",
        ),
    ] = None,
    weights: Annotated[
        str | None,
        typer.Option("--weights", "-w", help="Evaluate a model: registry name, hf://org/repo, checkpoint or run folder."),
    ] = None,
    data: Annotated[str, typer.Option(help="With --weights: cityscapes, or synth (a generated set).")] = "cityscapes",
    root: Annotated[
        Path | None,
        typer.Option(help=f"Cityscapes-layout folder (default: ${ENV_VAR}; for --data synth the generated set)."),
    ] = None,
    split: Annotated[str, typer.Option(help="Split to evaluate: gtFine/<split>.")] = "val",
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
    workers: Annotated[
        int | None, typer.Option(min=1, help="Threads decoding and counting images (default: CPUs, at most 8).")
    ] = None,
    inference: InferenceConfig = InferenceConfig(),
) -> None:
    """Evaluate a model, or a folder of predictions, with the official Cityscapes scores (IoU, iIoU,
    categories) and hard-region scores (boundary IoU, trimap mIoU, thin classes, selector error recall)."""
    if (predictions is None) == (weights is None):
        raise typer.BadParameter("give either --predictions DIR or --weights W.", param_hint="--predictions/--weights")
    json_path = _output_path(json_out)
    hard_config = HardRegionConfig(boundary_width=boundary_width) if hard else None
    with _progress() as on_progress:
        if predictions is not None:
            root = _dataset_root(root)
            result = evaluate_predictions(
                predictions, root, split, hard=hard_config, per_image=per_image, workers=workers, progress=on_progress
            )
            what = f"{predictions.name} vs gtFine/{split}"
        else:
            assert weights is not None
            result, what = _evaluate_weights(
                weights, data, root, split, inference, hard_config, per_image, max_images, registry, trust_pickle,
                resolve_device(device), on_progress,
            )
    _report(result, what)
    if json_out is not None:
        _write_json(result.to_dict(), json_path)


def _evaluate_weights(
    weights: str,
    data: str,
    root: Path | None,
    split: str,
    inference: InferenceConfig,
    hard: HardRegionConfig | None,
    per_image: bool,
    max_images: int | None,
    registry: Path | None,
    trust_pickle: bool,
    device: str,
    progress: Callable[[int, int], None] | None,
) -> tuple[EvaluationResult, str]:
    from ..data.cityscapes import CityscapesDataset
    from ..data.transforms import TransformSettings, eval_transforms
    from ..weights.resolve import load_weights

    if data not in ("cityscapes", "synth"):
        raise typer.BadParameter(f"{data!r}: use cityscapes or synth.", param_hint="--data")
    if data == "synth" and root is None:
        from ..data.synth import default_synth_root, ensure_synth_dataset
        from ..training.config import recipe

        quick = recipe("cpu-quick")
        args = (quick.synth_train, quick.synth_val, quick.synth_size, quick.seed)
        root = ensure_synth_dataset(default_synth_root(*args), *args)
    loaded = load_weights(weights, registry=registry, trust_pickle=trust_pickle, device=device)
    settings = TransformSettings(mean=tuple(loaded.meta.mean), std=tuple(loaded.meta.std))  # type: ignore[arg-type]
    dataset = CityscapesDataset(root, split, transform=eval_transforms(settings))
    err.print(f"Model {loaded.meta.architecture} from {loaded.source} on {device}; {len(dataset)} images", highlight=False)
    result = evaluate_model(loaded.model, dataset, inference, hard=hard, per_image=per_image, limit=max_images, progress=progress)
    return result, f"{loaded.meta.architecture} on {data} {split}"


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


def _pct(value: float | None) -> str:
    return pct(value, 2, missing="[dim]-[/dim]")


def _report(result: EvaluationResult, what: str) -> None:
    """Rich tables on stderr: classes, categories, hard regions."""
    s, h = result.scores, result.hard
    iiou = s.class_iiou or {}
    classes = Table(title=f"Cityscapes scores (%) of {what}: {s.num_images} images", title_justify="left")
    for col in ("class", "IoU", "iIoU", "boundary IoU" if h else None, "accuracy"):
        if col:
            classes.add_column(col, justify="left" if col == "class" else "right")
    for name in CLASS_NAMES:
        row = [name, _pct(s.class_iou[name]), _pct(iiou.get(name)) if name in INSTANCE_CLASS_NAMES else ""]
        if h:
            row.append(_pct(h.boundary_iou[name]))
        classes.add_row(*row, _pct(s.class_accuracy[name]))
    classes.add_section()
    mean = ["[bold]mean[/bold]", f"[bold]{_pct(s.miou)}[/bold]", f"[bold]{_pct(s.miiou)}[/bold]"]
    if h:
        mean.append(f"[bold]{_pct(h.boundary_miou)}[/bold]")
    classes.add_row(*mean, f"[bold]{_pct(s.mean_accuracy)}[/bold]")
    err.print(classes)

    cats = Table(title="Categories (%)", title_justify="left")
    for col in ("category", "IoU", "iIoU"):
        cats.add_column(col, justify="left" if col == "category" else "right")
    cat_iiou = s.category_iiou or {}
    for cat in CATEGORIES:
        if cat in s.category_iou:
            cats.add_row(cat, _pct(s.category_iou[cat]), _pct(cat_iiou[cat]) if cat in cat_iiou else "")
    cats.add_section()
    cats.add_row("[bold]mean[/bold]", f"[bold]{_pct(s.category_miou)}[/bold]", f"[bold]{_pct(s.category_miiou)}[/bold]")
    err.print(cats)

    summary = Table(title="Summary (%)", title_justify="left", show_header=False)
    summary.add_column("score")
    summary.add_column("value", justify="right")
    summary.add_row("mIoU (official)", _pct(s.miou))
    summary.add_row("iIoU (official)", _pct(s.miiou) if s.class_iiou is not None else "[dim]no instanceIds[/dim]")
    summary.add_row("pixel accuracy", _pct(s.pixel_accuracy))
    summary.add_row("mean class accuracy", _pct(s.mean_accuracy))
    if h:
        k = h.thresholds.index(h.boundary_width)
        scaled = [f"{r[k]} px at {size}" for size, r in h.pixel_radii.items() if size != "1024x2048"]
        where = f"; {', '.join(scaled)}" if scaled else ""
        summary.add_row(f"boundary mIoU (d = {h.boundary_width:g} px at 1024x2048{where})", _pct(h.boundary_miou))
        for width, value in h.trimap_miou.items():
            share = h.trimap_pixel_share[width]
            summary.add_row(f"trimap mIoU, band {width:g} px ({_pct(share)} % of evaluated pixels)", _pct(value))
        summary.add_row(f"thin-class mIoU ({', '.join(h.thin_iou)})", _pct(h.thin_miou))
        if h.selector is not None:
            for r, rec, cov in zip(h.selector.ratios, h.selector.error_recall, h.selector.coverage):
                summary.add_row(f"selector Top-{r:g}: errors inside / pixels inside", f"{_pct(rec)} / {_pct(cov)}")
    err.print(summary)
    err.print(f"[dim]{s.valid_pixels:,} evaluated pixels in {result.seconds:.1f} s.[/dim]")
