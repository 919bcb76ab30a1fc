"""Training checkpoints: one dict with everything needed to resume, written atomically.

Loaded with ``torch.load(weights_only=True)``: the restricted unpickler that accepts tensors, containers
and numbers only, so a checkpoint cannot execute code. Everything we store is of those types (RNG
states included, converted to tensors/lists).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..errors import WeightsError
from ..fsutil import atomic_path

CHECKPOINT_DIR = "checkpoints"
LAST = "last.pt"
BEST = "best.pt"


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file, fsync, ``os.replace``)."""
    path = Path(path)
    with atomic_path(path, durable=True) as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with the safe unpickler; a damaged or foreign file is a WeightsError."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"Checkpoint {path} does not exist.") from None
    except Exception as exc:  # truncated zip, foreign pickle with code, ...
        raise WeightsError(
            f"{path} cannot be loaded as a checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0][:300]}). "
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
