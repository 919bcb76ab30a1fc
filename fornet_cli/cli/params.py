"""Parsers for option values shared by several commands."""

from __future__ import annotations

import typer


def parse_size(value: str) -> tuple[int, int]:
    """``HxW`` (or a single number for a square) -> ``(height, width)``."""
    parts = value.lower().replace(" ", "").split("x")
    try:
        if len(parts) == 1:
            h = w = int(parts[0])
        elif len(parts) == 2:
            h, w = int(parts[0]), int(parts[1])
        else:
            raise ValueError
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a size; write HEIGHTxWIDTH, e.g. 1024x2048.") from None
    if h < 1 or w < 1:
        raise typer.BadParameter(f"{value!r}: height and width must be positive.")
    return h, w
