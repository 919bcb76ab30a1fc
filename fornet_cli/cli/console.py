"""Where output goes: human output (Rich) to stderr, machine output (JSON) to stdout."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


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


@contextmanager
def image_progress(label: str, transient: bool = False) -> Iterator[Callable[[int, int, Path, str], None]]:
    """A progress bar over images; yields the ``on_image(done, total, path, status)`` callback the engine
    calls, which also prints each failed file."""
    progress = Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[name]}"), TimeRemainingColumn(), console=err, transient=transient)
    with progress:
        task = progress.add_task(label, total=None, name="")

        def on_image(done: int, total: int, path: Path, status: str) -> None:
            progress.update(task, completed=done, total=total, name=path.name)
            if status == "failed":
                progress.console.print(f"[red]failed[/red] {path}", highlight=False)

        yield on_image
