"""`fornet eval`: the official Cityscapes scores plus hard-region scores, as a table and as JSON."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..data.labels import CATEGORIES, CLASS_NAMES, INSTANCE_CLASS_NAMES
from ..engine.evaluate import EvaluationResult, evaluate_predictions
from ..engine.hard_metrics import HardRegionConfig
from .console import err, print_json

# The official evaluator's variable for the dataset folder (also read by fornet's data commands).
DATASET_ENV = "CITYSCAPES_DATASET"


def eval_command(
    predictions: Annotated[
        Path,
        typer.Option(
            "--predictions",
            help="Folder of labelId PNGs, one per image, named <city>_<seq>_<frame>*.png (searched recursively, "
            "as the official evaluator does).",
        ),
    ],
    root: Annotated[
        Path | None,
        typer.Option(help=f"Cityscapes folder holding gtFine/ (default: ${DATASET_ENV})."),
    ] = None,
    split: Annotated[str, typer.Option(help="Ground-truth split: gtFine/<split>.")] = "val",
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
) -> None:
    """Evaluate segmentation predictions with the official Cityscapes scores (IoU, iIoU, categories)
    and hard-region scores (boundary IoU, trimap mIoU, thin classes)."""
    root = _dataset_root(root)
    json_path = _output_path(json_out)
    hard_config = HardRegionConfig(boundary_width=boundary_width) if hard else None
    # Model evaluation (--weights / --data / --mode / --tta) will build its EvaluationResult here with
    # fornet_cli.engine.evaluate.evaluate_model and report it through the same _report().
    with _progress() as on_progress:
        result = evaluate_predictions(
            predictions, root, split, hard=hard_config, per_image=per_image, workers=workers, progress=on_progress
        )
    _report(result, f"{predictions.name} vs gtFine/{split}")
    if json_out is not None:
        _write_json(result.to_dict(), json_path)


def _dataset_root(root: Path | None) -> Path:
    if root is not None:
        return root
    env = os.environ.get(DATASET_ENV)
    if not env:
        raise typer.BadParameter(
            f"give the Cityscapes folder with --root (or set ${DATASET_ENV}).", param_hint="--root"
        )
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
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    err.print(f"Wrote {path}")


def _pct(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "[dim]-[/dim]"
    return f"{100 * value:.2f}"


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
