"""`fornet demo`: the main job on an embedded default (what `make demo` runs)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from ..demo import DemoConfig, run_demo
from .console import err, print_json
from .train import _ProgressView


def demo(
    out: Annotated[Path, typer.Option(help="Output folder for everything the demo makes.")] = Path("runs/demo"),
    minutes: Annotated[float, typer.Option(help="Training budget in minutes (the other steps add about one).")] = 7.0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed for the data and the training run.")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace an earlier demo in --out.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
) -> None:
    """Generate data, train, evaluate, predict, show hardness, export: fornet end to end, no dataset needed."""
    start = time.perf_counter()
    with _ProgressView() as view:
        report = run_demo(DemoConfig(out=out, minutes=minutes, device=device, seed=seed, force=force),
                          say=lambda m: err.print(f"[bold cyan]{m}[/bold cyan]", highlight=False), train_callback=view)
    s, hard = report.scores, report.hardness
    err.print()
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}"  # noqa: E731
    err.print(f"[bold]val mIoU {pct(s['miou'])}[/bold] (boundary mIoU {pct(s['boundary_miou'])}, thin classes "
              f"{pct(s['thin_miou'])}) after {report.train['iterations']} iterations; synthetic data, not Cityscapes.")
    for row in hard.get("selector") or []:
        band = (row.get("band_area_matched") or {}).get("error_recall")
        if row.get("error_recall") is not None:
            err.print(f"Top-K {row['ratio']:g}: covers {pct(row['coverage'])} % of pixels and holds "
                      f"{pct(row['error_recall'])} % of the errors (a predicted-boundary band of the same area: "
                      f"{pct(band)} %)", highlight=False)
    err.print(f"ONNX export {'verified' if report.export.get('verified') else 'NOT verified'}: {report.export['path']}")
    default = report.default_weights
    if default.get("set"):
        err.print(f"This model is now your default weights ({default['ref']}): `fornet predict images/ --out masks/` "
                  "uses it. Change it with `fornet weights default REF`, forget it with `fornet weights default "
                  "--unset`.", highlight=False)
    elif default.get("current"):
        err.print(f"Your default weights stay {default['current']['ref']} (from {default['current']['from']}); to use "
                  f"this model: fornet weights default {default['this_model']}", highlight=False)
    err.print(f"Done in {time.perf_counter() - start:.0f} s. Report: [bold]{out / 'report.html'}[/bold]")
    if json_out:
        print_json(report.to_dict())
