"""`fornet show-hardness INPUTS... --out DIR [--weights W]`: where a FoR-Net model focuses, and whether its
errors fall there. Figures, an index.html gallery and summary.json; the summary also on stderr / --json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..devices import resolve_device
from ..fmt import pct
from ..fsutil import atomic_write_text
from ..hardness.analysis import DEFAULT_BAND_WIDTH
from ..hardness.selector_model import chosen_by, load_selector_model
from ..hardness.show import INDEX, SUMMARY, HardnessConfig, HardnessReport, show_hardness
from ..inference.predictor import InferenceConfig
from .console import err, image_progress
from .params import (
    FOCUS_OPTIONS,
    ClassesOpt,
    RegistryOpt,
    TrustPickleOpt,
    WeightsOpt,
    inference_options,
    parse_ratios,
    pick_weights,
)


@inference_options(only=("runtime", "selector_cue", *FOCUS_OPTIONS))
def show_hardness_command(
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders (searched recursively) and glob patterns.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder: one figure per image (mirroring the inputs), index.html, summary.json.")],
    weights: WeightsOpt = None,
    gt: Annotated[Path | None, typer.Option("--gt", help="Cityscapes root with gtFine/ to take ground truth from (found automatically for inputs in the Cityscapes layout).")] = None,
    data: Annotated[str, typer.Option("--data", help="cityscapes (ground truth: gtFine labelIds) or folder (your own data set: masks by name under --root, or in masks/ beside each images/ folder).")] = "cityscapes",
    root: Annotated[Path | None, typer.Option("--root", help="--data folder: the data set folder (classes.json, {split}/masks/).")] = None,
    classes: ClassesOpt = None,
    topk: Annotated[str | None, typer.Option("--topk", metavar="R1,R2,...", help="Run the model with these Top-K ratios, one per branch (default: the model's own).")] = None,
    json_out: Annotated[str | None, typer.Option("--json", metavar="FILE", help="Also write summary.json's content to FILE ('-' for stdout).")] = None,
    max_images: Annotated[int | None, typer.Option("--max-images", min=1, help="Show only the first N images.")] = None,
    band_width: Annotated[float, typer.Option("--band-width", min=0.5, help="Boundary-band baseline width in pixels at 1024x2048 (scaled with the image size).")] = DEFAULT_BAND_WIDTH,
    panel_width: Annotated[int, typer.Option("--panel-width", min=192, max=2048, help="Width of each figure panel in pixels.")] = 512,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: Annotated[int, typer.Option(min=1, help="torch threads for the model; the figures are drawn on one more thread.")] = 1,
    registry: RegistryOpt = None,
    trust_pickle: TrustPickleOpt = False,
    inference: InferenceConfig = InferenceConfig(),
) -> None:
    """Show where a FoR-Net model focuses (importance map, Top-K regions) and whether its errors fall there,
    against a boundary-band baseline of the same area."""
    config = HardnessConfig(
        topk_ratios=parse_ratios(topk), gt_root=gt if data == "cityscapes" else root, max_images=max_images,
        band_width=band_width, panel_width=panel_width, threads=threads, runtime=inference.runtime, classes=_folder_classes(data, root, classes),
        focus=inference.focus, focus_scale=inference.focus_scale, focus_tile=inference.focus_tile,
        focus_halo=inference.focus_halo, focus_rank=inference.focus_rank, selector_cue=inference.selector_cue,
    )
    json_path = _json_path(json_out)
    dev = resolve_device(device)
    choice = pick_weights(weights, registry)
    loaded = load_selector_model(choice.ref, registry=registry, trust_pickle=trust_pickle, device=dev)
    err.print(f"Model: {loaded.meta.architecture} ({loaded.meta.num_classes} classes) from {loaded.source} on {dev}", highlight=False)
    with image_progress("show-hardness", transient=True) as on_image:
        report = show_hardness(loaded, inputs, out, config, on_image=on_image, weights=choice.to_dict(),
                               notify=lambda line: err.print(line, highlight=False))
    _print_summary(report)
    if json_out is not None:
        text = json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n"
        if json_path is None:
            typer.echo(text, nl=False)
        else:
            atomic_write_text(json_path, text)
            err.print(f"Wrote {json_path}", highlight=False)
    for _, error in report.failed:
        err.print(f"[red]Error:[/red] {error}", highlight=False)
    if report.failed:
        raise typer.Exit(1)


def _folder_classes(data: str, root: Path | None, spec: str | None) -> object:
    """--data folder: the data set's classes (from --classes, else ROOT's classes file)."""
    from ..data.classes import resolve_classes
    from ..data.folder import check_root

    if data not in ("cityscapes", "folder"):
        raise typer.BadParameter(f"{data!r}: use cityscapes or folder.", param_hint="--data")
    if data == "cityscapes":
        if root is not None or spec is not None:
            raise typer.BadParameter("--root and --classes are for --data folder (Cityscapes ground truth: --gt).",
                                     param_hint="--data")
        return None
    return resolve_classes(spec, check_root(root) if root is not None or spec is None else None)


def _json_path(value: str | None) -> Path | None:
    if value is None or value == "-":
        return None
    path = Path(value)
    if path.suffix.lower() == ".png" or path.is_dir():
        raise typer.BadParameter(f"{value} is an image or a folder; give a .json file name.", param_hint="--json")
    return path


def _pct(value: float | None) -> str:
    return pct(value, missing="[dim]-[/dim]")


def _print_summary(report: HardnessReport) -> None:
    """The selector against the boundary band on stderr, from the rows the gallery shows too."""
    s = report.summary.to_dict()
    err.print(
        f"{s['images']} images ({s['images_with_ground_truth']} with ground truth), {report.seconds:.1f} s. "
        f"Figures and {INDEX}, {SUMMARY} in {report.out}",
        highlight=False,
    )
    rows, band, gt = s["selector"], s["band_fixed"], s["gt_band"]
    if band is None or gt is None:
        areas = ", ".join(f"Top-{row['ratio']:g}: {_pct(row['area'])} %" for row in rows)
        err.print(f"No ground truth, so no error recall. Hardness (mean S) {s['hardness']:.3f}; areas {areas}.", highlight=False)
        return
    table = Table(
        title=f"Errors found (%): the Top-K regions (chosen by {chosen_by(report.model.get('selector_cue'))}) vs a "
        "predicted-boundary band of the same area",
        title_justify="left",
    )
    for col in ("Top-K ratio", "coverage", "selector recall", "lift", "band recall", "band d (px)", "selector - band"):
        table.add_column(col, justify="left" if col == "Top-K ratio" else "right")
    cells = Table(
        title="Errors found (%) by as many cells of the selector's grid, chosen by other rules: the most predicted-"
        "band pixels, the smallest logit gap, the most errors (the ceiling for any selector on this grid)",
        title_justify="left",
    )
    for col in ("Top-K ratio", "selector", "band cells", "logit-gap cells", "ceiling"):
        cells.add_column(col, justify="left" if col == "Top-K ratio" else "right")
    for row in rows:
        m, diff = row["band_area_matched"], row["recall_minus_band"]
        color = "" if diff is None else ("green" if diff > 0 else "red")
        table.add_row(
            f"{row['ratio']:g}", _pct(row["coverage"]), _pct(row["error_recall"]),
            "-" if row["lift"] is None else f"{row['lift']:.2f}",
            _pct(None if m is None else m["error_recall"]), "-" if m is None else f"{m['width_px']:.1f}",
            f"[{color}]{_pct(diff)}[/{color}]" if color else _pct(diff),
        )
        cells.add_row(
            f"{row['ratio']:g}", _pct(row["error_recall"]), _pct(row.get("band_cells_error_recall")),
            _pct(row.get("gap_error_recall")), _pct(row.get("ceiling_error_recall")),
        )
    err.print(table)
    err.print(cells)
    if any(row["band_area_matched"] is None for row in rows):
        err.print(
            "[dim]-: even the widest band around the predicted boundaries covers less than the selector's region "
            "(the predictions have few boundaries).[/dim]"
        )
    widths = ", ".join(f"{d} px at {size}" for size, d in band["width_px"].items())
    err.print(
        f"Fixed band d = {band['width_px_at_1024x2048']:g} px at 1024x2048 ({widths}): coverage "
        f"{_pct(band['coverage'])} %, recall {_pct(band['error_recall'])} %. Ground-truth band (reference): coverage "
        f"{_pct(gt['coverage'])} %, recall {_pct(gt['error_recall'])} %. "
        f"mIoU {_pct(s['miou'])} %, {_pct(s['error_rate'])} % of evaluated pixels wrong.",
        highlight=False,
    )
