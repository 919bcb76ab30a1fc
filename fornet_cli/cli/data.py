"""`fornet data`: make a synthetic Cityscapes-style dataset; check a dataset folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..data.check import CheckReport, check_dataset
from ..data.cityscapes import ENV_VAR, IMAGE_DIR
from ..data.folder import splits_present
from ..data.folder_check import check_folder_dataset
from ..data.synth import LAYOUTS, generate_dataset, result_dict
from .console import err, print_json
from .params import parse_size

data_app = typer.Typer(
    help="Datasets: generate a synthetic street-scene set (Cityscapes or folder layout), check a dataset folder.",
    no_args_is_help=True,
)

MAX_PROBLEMS_SHOWN = 20


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,  # no bar (nor its blank line) in logs and pipes
    )


@data_app.command("synth")
def synth(
    out: Annotated[Path, typer.Argument(help="Folder to create (must be empty or new).")],
    train: Annotated[int, typer.Option(min=0, help="Frames in the train split.")] = 80,
    val: Annotated[int, typer.Option(min=0, help="Frames in the val split.")] = 20,
    size: Annotated[str, typer.Option(help="Frame size HEIGHTxWIDTH.")] = "512x1024",
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same frames.")] = 0,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Write into a non-empty folder; replaces a set fornet made there.")
    ] = False,
    workers: Annotated[int, typer.Option(min=1, help="Processes to render with.")] = 1,
    layout: Annotated[str, typer.Option(help=f"{' or '.join(LAYOUTS)}: leftImg8bit/ + gtFine/, or "
                                        "{train,val}/images|masks/ + classes.json (your own data's layout).")] = "cityscapes",
    classes: Annotated[str | None, typer.Option(help="--layout folder: 'cityscapes' (the 19 training classes, the "
                                                "default) or a remap file: a classes file whose classes say which "
                                                "Cityscapes classes they take, \"from\": [\"road\", ...].")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")] = False,
) -> None:
    """Write a synthetic street-scene dataset in the Cityscapes layout (leftImg8bit/, gtFine/) or the folder
    layout (train/images/, train/masks/, ..., classes.json)."""
    h, w = parse_size(size)
    with _progress() as bar:
        task = bar.add_task("rendering", total=train + val)
        result = generate_dataset(
            out,
            train=train,
            val=val,
            size=(h, w),
            seed=seed,
            overwrite=overwrite,
            workers=workers,
            progress=lambda done, total: bar.update(task, completed=done),
            layout=layout,
            classes=classes,
        )
    if json_out:
        print_json(result_dict(result))
        return
    err.print(
        f"Wrote {train + val} frames ({train} train, {val} val) at {h}x{w} to {result.root} "
        f"in {result.seconds:.1f} s. Check them with: fornet data check {result.root}"
        + (" --data folder" if layout == "folder" else ""),
        highlight=False,
    )


@data_app.command("check")
def check(
    root: Annotated[
        Path | None, typer.Argument(help=f"Dataset folder (holding leftImg8bit/ and gtFine/); default ${ENV_VAR}.")
    ] = None,
    split: Annotated[
        list[str] | None, typer.Option("--split", help="Split to check (repeatable); default: every split present.")
    ] = None,
    data: Annotated[str | None, typer.Option(help="cityscapes (leftImg8bit/ + gtFine/) or folder ({split}/images|masks/ "
                                             "+ classes.json); default: what ROOT holds.")] = None,
    classes: Annotated[str | None, typer.Option(help="--data folder: a classes file (JSON/YAML) or 'cityscapes' "
                                                "(default: ROOT/classes.json or classes.yaml).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
) -> None:
    """Validate every image and label of a dataset folder (Cityscapes or folder layout) and show class
    frequencies.

    Exits with 1 when problems are found.
    """
    kind = data or _layout_of(root)
    if kind not in ("cityscapes", "folder"):
        raise typer.BadParameter(f"{kind!r}: use cityscapes or folder.", param_hint="--data")
    with _progress() as bar:
        tasks: dict[str, int] = {}

        def advance(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(f"checking {name}", total=total)
            bar.update(tasks[name], completed=done)

        if kind == "folder":
            report = check_folder_dataset(root, classes, split or None, progress=advance)
        else:
            report = check_dataset(root, split or None, progress=advance)
    if json_out:
        print_json(report.to_dict())
    else:
        _print_report(report)
    if not report.ok:
        raise typer.Exit(1)


def _layout_of(root: Path | None) -> str:
    """folder when ROOT holds {split}/images/ and no leftImg8bit/, else cityscapes."""
    if root is not None and root.is_dir() and not (root / IMAGE_DIR).is_dir() and splits_present(root):
        return "folder"
    return "cityscapes"


def _print_report(report: CheckReport) -> None:
    summary = Table(title=f"{report.root}")
    for col in ("split", "images", "labelled", "instanceIds", "sizes (WxH: images)"):
        summary.add_column(col, justify="left" if col in ("split", "sizes (WxH: images)") else "right")
    for s in report.splits:
        sizes = ", ".join(f"{k}: {v}" for k, v in sorted(s.sizes.items())) or "-"
        summary.add_row(s.split, str(s.images), str(s.labelled), str(s.with_instances), sizes)
    err.print(summary)
    labelled = [s for s in report.splits if s.labelled]
    if labelled:
        table = Table(title="class pixel frequencies (share of labelled pixels; images showing the class)")
        table.add_column("trainId" if report.classes is None else "index", justify="right")
        table.add_column("class")
        for s in labelled:
            table.add_column(f"{s.split} %", justify="right")
            table.add_column(f"{s.split} images", justify="right")
        totals = [max(s.labelled_pixels, 1) for s in labelled]
        for k, name in enumerate(labelled[0].class_names):
            cells = []
            for s, total in zip(labelled, totals):
                cells += [f"{100 * s.class_pixels[k] / total:.2f}", str(s.class_images[k])]
            table.add_row(str(k), name, *cells)
        cells = []
        for s, total in zip(labelled, totals):
            cells += [f"{100 * s.ignored_pixels / total:.2f}", "-"]
        table.add_row("255", "ignored", *cells, style="dim")
        err.print(table)
    for note in report.notes:
        err.print(f"[yellow]Note:[/yellow] {note}", highlight=False, soft_wrap=True)
    for problem in report.problems[:MAX_PROBLEMS_SHOWN]:
        err.print(f"[red]Problem:[/red] {problem}", highlight=False, soft_wrap=True)
    if len(report.problems) > MAX_PROBLEMS_SHOWN:
        err.print(f"... and {len(report.problems) - MAX_PROBLEMS_SHOWN} more problems (see --json).")
    if report.ok:
        err.print("[green]No problems found.[/green]")
    else:
        err.print(f"[red]{len(report.problems)} problem(s) found.[/red]")
