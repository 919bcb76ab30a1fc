"""The run folder's picture of the run: ``curve.svg`` (loss and val mIoU against the iteration) and a small
``report.html``, rewritten atomically at every logged step and validation (rank 0 only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write_text
from ..viz.charts import training_curve_svg
from ..viz.run_page import curve_from_log, render_run_page

CURVE_NAME = "curve.svg"
REPORT_NAME = "report.html"


class RunCurve:
    """The log entries so far (read back from log.jsonl on resume) and the files drawn from them."""

    def __init__(self, run: Path, log: Path, model: str, iters: int) -> None:
        self.run, self.model, self.iters = run, model, iters
        self.entries: list[dict[str, Any]] = []
        if log.is_file():  # a resumed run: its log was cut back to the resumed iteration already
            for line in log.read_text(errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(entry, dict):
                    self.entries.append(entry)

    def add(self, entry: dict[str, Any], iteration: int, best: float | None, running: bool = True) -> None:
        """Record a log entry and redraw."""
        self.entries.append(entry)
        self.write(iteration, best, running)

    def write(self, iteration: int, best: float | None, running: bool) -> None:
        steps, vals = curve_from_log(self.entries)
        atomic_write_text(self.run / CURVE_NAME, training_curve_svg(steps, vals, self.iters) + "\n")
        run = {"model": self.model, "iters": self.iters, "iteration": iteration, "best": best}
        atomic_write_text(self.run / REPORT_NAME, render_run_page(run, self.entries, running))
