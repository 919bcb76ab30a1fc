"""Training checkpoints: one dict with everything needed to resume, written atomically.

Loaded with ``torch.load(weights_only=True)``: the restricted unpickler that accepts tensors, containers
and numbers only, so a checkpoint cannot execute code. Everything we store is of those types (RNG
states included, converted to tensors/lists).
"""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

from ..errors import OutputError, WeightsError
from ..fsutil import atomic_path, human_bytes, write_failure

CHECKPOINT_DIR = "checkpoints"
LAST = "last.pt"
BEST = "best.pt"


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file, fsync, ``os.replace``)."""
    path = Path(path)
    try:
        # through a file we close ourselves: on a failed write torch's own writer keeps the (deleted) temporary
        # file open, and its space in use, until the exception is garbage-collected
        with atomic_path(path, durable=True) as tmp, open(tmp, "wb") as fh:
            torch.save(state, fh)
    except (OSError, RuntimeError) as exc:  # full disk, permissions (torch's zip writer raises RuntimeError)
        size = f"; the previous {path.name} takes {human_bytes(path.stat().st_size)}" if path.is_file() else ""
        raise OutputError(
            f"Could not write the checkpoint {path} ({write_failure(path, exc)}{size}). {_previous(path)} Free some "
            f"space (or fix the folder's permissions), then continue with `fornet train --resume {path.parent.parent}`."
        ) from None
    return path


def _previous(path: Path) -> str:
    """What is left at ``path`` after a failed write: atomic_path kept the earlier file, if there was one."""
    if not path.is_file():
        return "Nothing was half-written (there was no earlier file of that name)."
    try:
        return f"The previous {path.name} is intact (iteration {load_checkpoint(path).get('iteration')})."
    except WeightsError:
        return f"The previous {path.name} was already unreadable."


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with the safe unpickler; a damaged or foreign file is a WeightsError."""
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise WeightsError(f"Checkpoint {path} is empty (0 bytes): it was never completely written. Restore it or start over.")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing a foreign file
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"Checkpoint {path} does not exist.") from None
    except pickle.UnpicklingError as exc:  # the safe unpickler met a class or function it does not allow
        refused = [line.strip() for line in str(exc).splitlines() if "GLOBAL" in line or "Unsupported" in line]
        detail = f" ({refused[0][:200]})" if refused else ""
        raise WeightsError(
            f"{path} cannot be loaded: it holds Python objects that fornet's safe loader refuses to unpickle{detail}. "
            "It is not a fornet checkpoint, or it was altered; fornet never runs code from a checkpoint."
        ) from None
    except Exception as exc:  # truncated zip, wrong format, ...
        first = str(exc).splitlines()[0][:300] if str(exc).strip() else "no details"
        raise WeightsError(
            f"{path} cannot be loaded as a checkpoint ({type(exc).__name__}: {first}). "
            "It may be damaged or not a fornet checkpoint; fornet never unpickles arbitrary objects."
        ) from None
    if not isinstance(state, dict):
        raise WeightsError(f"{path} holds a {type(state).__name__}, not a checkpoint dict.")
    return state


def run_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """A run directory's best checkpoint, else its last one, else None."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    for name in (BEST, LAST):
        if (folder / name).is_file():
            return folder / name
    return None
