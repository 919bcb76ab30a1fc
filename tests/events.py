"""Waiting for something to happen, never for time to pass.

Tests that kill or interrupt a process wait for an event of that process (a checkpoint written, a log line,
a file appearing) and act then. The only time limit is :data:`HANG_LIMIT`, far beyond what any step takes even
on a loaded 2-core machine: reaching it means the process hangs, and the test fails saying what it waited for.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

HANG_LIMIT = 600.0  # seconds; only a hang gets here
T = TypeVar("T")


def wait_for(condition: Callable[[], T], what: str, proc: subprocess.Popen | None = None,
             limit: float = HANG_LIMIT, poll: float = 0.002, context: Callable[[], str] = lambda: "") -> T:
    """Poll ``condition`` until it returns something true, and return that. Fails when ``proc`` ends first
    (the event can no longer happen) or after ``limit`` seconds (a hang); ``context`` adds to the message."""
    deadline = time.monotonic() + limit
    while True:
        result = condition()
        if result:
            return result
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended (exit code {proc.returncode}) before {what}\n{context()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing happened for {limit:.0f} s while waiting for {what} (a hang?)\n{context()}")
        time.sleep(poll)


def file_id(path: Path) -> tuple[int, int] | None:
    """(inode, mtime in ns) of ``path``, None when it does not exist: an atomic replace changes the inode."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def replaced(path: Path, times: int = 1) -> Callable[[], bool]:
    """A condition: ``path`` was (re)written ``times`` times since this call (its first appearance counts)."""
    state = {"id": file_id(path), "left": times}

    def check() -> bool:
        now = file_id(path)
        if now is not None and now != state["id"]:
            state["id"], state["left"] = now, state["left"] - 1
        return state["left"] <= 0

    return check


def writing(target: Path, pid: int) -> Callable[[], list[Path]]:
    """A condition: process ``pid`` is writing ``target`` now (fsutil.atomic_path's temporary file exists)."""
    prefix = f".{target.name}.{pid}."

    def check() -> list[Path]:
        try:
            names = os.listdir(target.parent)
        except FileNotFoundError:
            return []
        return [target.parent / n for n in names if n.startswith(prefix) and n.endswith(".tmp")]

    return check


class StderrLines:
    """Collects a process's stderr lines in a thread (and copies them to ``log``); tests wait for a line."""

    def __init__(self, proc: subprocess.Popen, log: Path | None = None) -> None:
        self.lines: list[str] = []
        self._proc = proc
        self._log = log
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        fh = open(self._log, "a", encoding="utf-8") if self._log else None
        try:
            for line in self._proc.stderr:  # type: ignore[union-attr]
                self.lines.append(line)
                if fh:
                    fh.write(line)
                    fh.flush()
        finally:
            if fh:
                fh.close()

    def seen(self, start: str) -> Callable[[], bool]:
        """A condition: a line starting with ``start`` was printed."""
        return lambda: any(line.startswith(start) for line in self.lines)

    def text(self) -> str:
        self._thread.join(timeout=0 if self._proc.poll() is None else HANG_LIMIT)
        return "".join(self.lines)
