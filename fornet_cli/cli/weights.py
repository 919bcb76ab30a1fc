"""`fornet weights list | info NAME | download NAME`: the named weights registry."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .. import hub
from ..weights.defaults import ENV_VAR, clear_default, find_default, store_default
from .console import err, print_json

app = typer.Typer(help="Named pretrained weights (weights.toml, FORNET_WEIGHTS, --registry) and your default weights.",
                  no_args_is_help=True)

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


@app.command()
def default(
    ref: Annotated[str | None, typer.Argument(help="Weights to use when a command gets no --weights: a registry name, "
                                              "a checkpoint or run folder, a .safetensors file or hf://org/repo.")] = None,
    unset: Annotated[bool, typer.Option("--unset", help="Forget the default.")] = False,
    registry: RegistryOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show, set or unset the default weights of predict, eval, show-hardness and export (kept in your settings,
    config.toml in your config folder; $FORNET_WEIGHTS_DEFAULT overrides it)."""
    if ref is not None and unset:
        raise typer.BadParameter("give a reference to set, or --unset, not both.", param_hint="--unset")
    if unset:
        path = clear_default()
        err.print(f"Unset the default weights in {path}.", highlight=False)
    elif ref is not None:
        stored, path = store_default(ref, registry)
        err.print(f"Default weights: {stored} (saved in {path}). Change it with `fornet weights default REF`, "
                  "forget it with `fornet weights default --unset`.", highlight=False)
    found = find_default(registry)
    if json_out:
        print_json(None if found is None else found.to_dict())
    elif ref is None and not unset:
        if found is None:
            err.print("No default weights: commands need --weights. Set one with `fornet weights default REF` "
                      f"(or ${ENV_VAR}); `fornet demo` trains a model and makes it the default.", highlight=False)
        else:
            err.print(f"Default weights: {found.ref} (from {found.origin}).", highlight=False)
    if found is not None and not found.origin.startswith("your settings") and (ref is not None or unset):
        err.print(f"Note: {found.origin} sets the default now in use: {found.ref}.", highlight=False)
