"""`fornet weights list | info NAME | download NAME`: the named weights registry."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .. import hub
from .console import err, print_json

app = typer.Typer(help="Named pretrained weights (weights.toml, FORNET_WEIGHTS, --registry).", no_args_is_help=True)

RegistryOpt = Annotated[
    Path | None, typer.Option("--registry", help="An extra weights.toml whose entries add to or override the built-in ones.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


@app.command("list")
def list_weights(registry: RegistryOpt = None, json_out: JsonOpt = False) -> None:
    """List every named weight: what it is, where it comes from, and whether its revision is pinned."""
    specs = hub.load_registry(registry)
    if json_out:
        print_json([{**asdict(s), "pinned": s.pinned} for s in specs.values()])
        return
    table = Table(title="fornet weights")
    for col in ("name", "kind", "architecture", "classes", "repo", "revision", "license"):
        table.add_column(col)
    for s in specs.values():
        rev = s.revision if s.pinned else f"{s.revision} (not pinned)"
        table.add_row(s.name, s.kind, s.architecture, str(s.classes), s.repo_id, rev[:20], s.license)
    err.print(table)


@app.command()
def info(name: str, registry: RegistryOpt = None, json_out: JsonOpt = False) -> None:
    """Everything the registry says about one entry."""
    spec = hub.get_spec(name, hub.load_registry(registry))
    data = {**asdict(spec), "pinned": spec.pinned}
    if json_out:
        print_json(data)
        return
    for key, value in data.items():
        err.print(f"[bold]{key}[/bold]: {value}", highlight=False)


@app.command()
def download(
    name: str,
    registry: RegistryOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Download again even if cached.")] = False,
) -> None:
    """Download a named weight into the Hugging Face cache and verify it; prints the local path on stdout."""
    spec = hub.get_spec(name, hub.load_registry(registry))
    with err.status(f"Downloading {spec.repo_id}/{spec.filename}@{spec.revision} ..."):
        path, _ = hub.download_spec(spec, force=force)
    sha = hub.file_sha256(path)
    err.print(f"[green]verified[/green] {name}: sha256 {sha}", highlight=False)
    typer.echo(str(path))


@app.command()
def pin(name: str, registry: RegistryOpt = None) -> None:
    """Print the registry entry with its revision pinned to the current commit and its sha256 (for maintainers)."""
    spec = hub.get_spec(name, hub.load_registry(registry))
    with err.status(f"Resolving {spec.repo_id}@{spec.revision} ..."):
        pinned = hub.pin_spec(spec)
    err.print(f"Replace the revision of [{name}] in {spec.registry_file} with:", highlight=False)
    typer.echo(f'revision = "{pinned["revision"]}"\nsha256 = "{pinned["sha256"]}"')
