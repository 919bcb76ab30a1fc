"""Where work runs: the device behind ``--device auto|cpu|cuda[:N]`` and the number of threads.

One definition each, used by every command and by the library (training, evaluation, prediction).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from .errors import ConfigError


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device``, or a ConfigError when it does not exist or is not usable here."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"Unknown device {str(device)!r}; use auto, cpu or cuda (cuda:N for one GPU).") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"Device {str(device)!r} was asked for, but PyTorch sees no CUDA GPU here (torch {torch.__version__}). "
            "Use --device cpu, or auto to take a GPU only when there is one."
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"Device {str(device)!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s).")
    return dev


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> the current CUDA device when there is one, else the CPU; anything else is checked."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    return check_device(device)


def default_workers() -> int:
    """Threads for work that parallelises over images (decoding, counting): the CPUs, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` for the block (None: unchanged).

    Work that parallelises over images sets 1: intra-op threads of several workers on a busy machine
    wait for each other (oversubscribed OpenMP threads spin and can run 30x slower).
    """
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
