"""Where output goes: human output (Rich) to stderr, machine output (JSON) to stdout."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console


def _console() -> Console:
    console = Console(stderr=True)
    if not console.is_terminal:  # piped or captured: do not squeeze tables into 80 columns
        console.width = max(console.width, 132)
    return console


err = _console()


def print_json(data: Any) -> None:
    """Machine-readable output on stdout, one document."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()
