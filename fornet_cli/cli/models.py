"""`fornet models`: the registered variants with their size and cost."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from ..model import list_models
from ..model.complexity import summarize_model
from .console import err, print_json
from .params import parse_size


def models(
    size: Annotated[str, typer.Option(help="Input size HxW at which GMACs are counted.")] = "1024x2048",
    classes: Annotated[int, typer.Option(min=1, help="Number of output classes.")] = 19,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON on stdout instead of a table.")] = False,
) -> None:
    """List the model variants: backbone, output stride, parameters, GMACs, ImageNet init."""
    h, w = parse_size(size)
    rows = [summarize_model(name, h, w, num_classes=classes) for name in list_models()]
    if json_out:
        print_json([asdict(r) for r in rows])
        return
    table = Table(title=f"fornet models (GMACs at {h}x{w}, {classes} classes)")
    numeric = ("backbone OS", "grid stride", "C", "params", "GMACs")
    for col in ("name", "origin", "backbone", *numeric, "ImageNet init"):
        table.add_column(col, justify="right" if col in numeric else "left")
    for r in rows:
        table.add_row(
            r.name,
            "paper" if r.paper else "ours",
            r.backbone,
            str(r.output_stride),
            str(r.head_stride),
            str(r.channels),
            f"{r.parameters:,}",
            f"{r.gmacs:,.1f}",
            r.backbone_weights or "-",
        )
    err.print(table)
