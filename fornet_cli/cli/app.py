"""The Typer application and its single error handler."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from .._version import __version__
from ..errors import FornetError
from .console import err


def _debug() -> bool:
    return os.environ.get("FORNET_DEBUG", "") not in ("", "0", "false", "no")


# Exceptions Click/Typer handle themselves (usage errors exit with 2). Typer >= 0.29 vendors Click, so
# the base class is found from typer's own BadParameter rather than imported from click.
_CLICK_EXCEPTION = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
_PASSTHROUGH = (typer.Exit, typer.Abort, _CLICK_EXCEPTION)


class FornetGroup(TyperGroup):
    """Turns library errors into ``Error: ...`` on stderr and exit code 1 (traceback with FORNET_DEBUG=1)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _PASSTHROUGH:
            raise
        except BrokenPipeError:  # `fornet ... | head`: the reader left; say nothing more
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("[red]Interrupted.[/red]")
            raise typer.Exit(130) from None
        except FornetError as exc:
            _report(exc, str(exc))
        except OSError as exc:  # disk full, permissions, ... : say which file
            where = f" ({exc.filename})" if exc.filename else ""
            _report(exc, f"{exc.strerror or exc}{where}. Check the path, its permissions and free space.")
        except Exception as exc:  # a bug: keep it short unless debugging
            _report(exc, f"internal error ({type(exc).__name__}: {exc}). Rerun with FORNET_DEBUG=1 and report the traceback.")


def _report(exc: BaseException, message: str) -> None:
    if _debug():
        raise exc
    # escape: messages hold paths and hints such as 'fornet-cli[export]' that Rich would read as markup
    err.print(f"[bold red]Error:[/bold red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


app = typer.Typer(
    cls=FornetGroup,
    name="fornet",
    help="FoR-Net semantic segmentation: train, evaluate, predict, export and see where the model focuses.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fornet {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """FoR-Net semantic segmentation from the command line."""


def _register() -> None:
    from .benchmark import benchmark
    from .data import data_app
    from .demo import demo
    from .eval import eval_command
    from .export import export
    from .models import models
    from .predict import predict
    from .show_hardness import show_hardness_command
    from .train import train
    from .weights import app as weights_app

    app.command("train")(train)
    app.command("eval")(eval_command)
    app.command("predict")(predict)
    app.command("show-hardness")(show_hardness_command)
    app.command("models")(models)
    app.command("export")(export)
    app.command("benchmark")(benchmark)
    app.command("demo")(demo)
    app.add_typer(weights_app, name="weights")
    app.add_typer(data_app, name="data")


_register()


def main() -> None:
    """Console-script entry point."""
    sys.exit(app())
