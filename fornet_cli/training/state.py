"""What a training checkpoint holds besides the weights, and how a run resumes from it.

RNG states are stored as tensors and lists only, so the checkpoint loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import FornetError, WeightsError
from ..weights.checkpoint import load_checkpoint


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


RESUME_KEYS = ("model", "optimizer", "scheduler", "scaler", "iteration", "rng", "config")


def resume_state(path: Path) -> dict[str, Any]:
    """``checkpoints/last.pt`` with every entry a resume needs, else a WeightsError (never a KeyError)."""
    state = load_checkpoint(path)
    missing = [k for k in RESUME_KEYS if k not in state]
    if missing:
        raise WeightsError(
            f"{path} is not a complete fornet training checkpoint (no {', '.join(missing)}), so the run cannot be "
            "resumed from it. Restore the file, or start the run again with --force."
        )
    return state


def resume_part(path: Path, what: str, load: Callable[[], Any]) -> Any:
    """Run ``load``; a checkpoint whose content does not fit (edited, or from another version) is a WeightsError."""
    try:
        return load()
    except FornetError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
        detail = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise WeightsError(
            f"The {what} in {path} does not fit this run ({detail}); the run cannot be resumed from it. Restore "
            "the file, or start the run again with --force."
        ) from None


def restore(state: dict[str, Any], model: nn.Module, optimizer: Any, scheduler: Any, scaler: Any) -> tuple:
    """Load a checkpoint into the run's objects; returns ``(iteration, best mIoU, history)``."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"])
    return int(state["iteration"]), state.get("best_miou"), list(state.get("history", []))
