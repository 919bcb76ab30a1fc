"""The run folder: created and checked before training, its JSON-lines log, and its saved config."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..errors import ConfigError
from ..fsutil import atomic_write_text
from ..weights.checkpoint import BEST, CHECKPOINT_DIR, LAST
from .config import TrainConfig
from .curve import CURVE_NAME, REPORT_NAME

if TYPE_CHECKING:
    from ..data.classes import ClassSet

CONFIG_NAME = "config.json"
LOG_NAME = "log.jsonl"
BEST_METRICS_NAME = "best_metrics.json"


def prepare_run_dir(out: str | os.PathLike, config: TrainConfig, *, resume: bool, force: bool) -> Path:
    """Create/validate the run folder: refuse to mix two runs, check it is writable."""
    run = Path(out)
    try:
        run.mkdir(parents=True, exist_ok=True)
        probe = run / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"Cannot write to the output folder {run} ({exc.strerror}). Choose another --out.") from None
    existing = (run / CONFIG_NAME).is_file() or (run / CHECKPOINT_DIR / LAST).is_file()
    if resume:
        if not (run / CHECKPOINT_DIR / LAST).is_file():
            stopped = " (it was stopped before its first checkpoint: start it again with --force)" if existing else ""
            raise ConfigError(f"Nothing to resume in {run}: {CHECKPOINT_DIR}/{LAST} does not exist{stopped}.")
    elif existing and not force:
        raise ConfigError(
            f"{run} already holds a training run. Pass --resume to continue it, --force to start over "
            "(its checkpoints and log are replaced), or choose another --out."
        )
    for leftover in (run / CHECKPOINT_DIR).glob(".*.tmp"):  # from a writer that was killed mid-write
        leftover.unlink(missing_ok=True)
    if force and not resume:
        for stale in (run / CHECKPOINT_DIR / LAST, run / CHECKPOINT_DIR / BEST, run / LOG_NAME, run / BEST_METRICS_NAME,
                      run / CURVE_NAME, run / REPORT_NAME):
            stale.unlink(missing_ok=True)
    return run


class JsonLog:
    """Append-only JSON lines; on resume, entries after the resumed iteration are dropped."""

    def __init__(self, path: Path, resume_from: int | None) -> None:
        self.path = path
        if resume_from is not None and path.is_file():
            kept = [line for line in path.read_text(errors="replace").splitlines() if _log_iter(line) <= resume_from]
            atomic_write_text(path, "".join(line + "\n" for line in kept))

    def write(self, entry: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")


def _log_iter(line: str) -> float:
    """A log line's iteration; a line cut short (full disk, crash) counts as after any resume point: dropped."""
    try:
        entry = json.loads(line)
        return float(entry.get("iter", 0)) if isinstance(entry, dict) else float("inf")
    except (json.JSONDecodeError, TypeError, ValueError):
        return float("inf")


def write_config(run: Path, config: TrainConfig, world_size: int, classes: ClassSet | None = None) -> None:
    """The resolved config as ``config.json`` (with the fornet version, the number of processes and the
    class names and colours the run learns)."""
    document: dict[str, Any] = {"fornet_version": __version__, "world_size": world_size, **config.to_dict()}
    if classes is not None:
        document["class_names"], document["palette"] = list(classes.names), classes.palette
    atomic_write_text(run / CONFIG_NAME, json.dumps(document, indent=2) + "\n")
