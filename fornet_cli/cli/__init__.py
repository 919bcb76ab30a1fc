"""The command-line interface (the only package that imports typer and rich)."""

from .app import app, main

__all__ = ["app", "main"]
