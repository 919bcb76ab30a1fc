"""The Rich tables of `fornet eval` (stderr): classes, Cityscapes categories, hard regions."""

from __future__ import annotations

from rich.table import Table

from ..data.labels import CATEGORIES, INSTANCE_CLASS_NAMES
from ..evaluation.evaluate import EvaluationResult
from ..fmt import pct
from .console import err


def _pct(value: float | None) -> str:
    return pct(value, 2, missing="[dim]-[/dim]")


def print_tables(result: EvaluationResult, what: str) -> None:
    """Rich tables on stderr: classes, categories, hard regions."""
    s, h = result.scores, result.hard
    cityscapes = s.space.cityscapes
    iiou = s.class_iiou or {}
    label = "Cityscapes scores" if cityscapes else "Scores"
    classes = Table(title=f"{label} (%) of {what}: {s.num_images} images", title_justify="left")
    for col in ("class", "IoU", "iIoU" if cityscapes else None, "boundary IoU" if h else None, "accuracy"):
        if col:
            classes.add_column(col, justify="left" if col == "class" else "right")
    for name in s.space.class_names:
        row = [name, _pct(s.class_iou[name])]
        if cityscapes:
            row.append(_pct(iiou.get(name)) if name in INSTANCE_CLASS_NAMES else "")
        if h:
            row.append(_pct(h.boundary_iou[name]))
        classes.add_row(*row, _pct(s.class_accuracy[name]))
    classes.add_section()
    mean = ["[bold]mean[/bold]", f"[bold]{_pct(s.miou)}[/bold]"] + ([f"[bold]{_pct(s.miiou)}[/bold]"] if cityscapes else [])
    if h:
        mean.append(f"[bold]{_pct(h.boundary_miou)}[/bold]")
    classes.add_row(*mean, f"[bold]{_pct(s.mean_accuracy)}[/bold]")
    err.print(classes)
    if s.category_iou is not None:
        _categories(result)
    _summary(result)
    err.print(f"[dim]{s.valid_pixels:,} evaluated pixels in {result.seconds:.1f} s.[/dim]")


def _categories(result: EvaluationResult) -> None:
    s = result.scores
    assert s.category_iou is not None
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


def _summary(result: EvaluationResult) -> None:
    s, h = result.scores, result.hard
    summary = Table(title="Summary (%)", title_justify="left", show_header=False)
    summary.add_column("score")
    summary.add_column("value", justify="right")
    summary.add_row("mIoU (official)" if s.space.cityscapes else "mIoU", _pct(s.miou))
    if s.space.cityscapes:
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
        if h.thin_iou:
            summary.add_row(f"thin-class mIoU ({', '.join(h.thin_iou)})", _pct(h.thin_miou))
        if h.selector is not None:
            for r, rec, cov in zip(h.selector.ratios, h.selector.error_recall, h.selector.coverage):
                summary.add_row(f"selector Top-{r:g}: errors inside / pixels inside", f"{_pct(rec)} / {_pct(cov)}")
    err.print(summary)
