"""Peak memory of one call: CUDA allocator statistics, or resident-memory growth on the CPU.

CPU: Linux keeps a process's peak resident set size (VmHWM) and resets it on request (writing ``5`` to
``/proc/self/clear_refs``). The peak during the call minus the resident size before it is the memory the
call added: activations and workspace, not the weights that were already resident. ``tracemalloc`` would
see none of it (PyTorch allocates in C++).

glibc keeps freed memory for reuse, so a call could be served from memory that is already resident and
look cheaper than it is. Two measures: before each measurement ``malloc_trim(0)`` hands free heap memory
back to the system; and :func:`exact_cpu_accounting` pins glibc's mmap threshold (which otherwise grows
up to 32 MiB as large blocks are freed) at 64 KiB, so that every block of 64 KiB or more is mapped when
allocated and returned when freed. The process then allocates slightly slower, which is why benchmarks
measure memory only after timing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_M_MMAP_THRESHOLD = -3  # mallopt parameter number in glibc's malloc.h


def _status_kib(key: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def cpu_peak_supported() -> bool:
    return _status_kib("VmHWM") is not None and _reset_peak_rss()


def _libc() -> Any:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def exact_cpu_accounting() -> bool:
    """Make freed memory leave the resident set (see the module docstring). False where not glibc."""
    libc = _libc()
    try:
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, 64 * 1024))
    except AttributeError:  # not glibc (or no libc found)
        return False


def _trim() -> None:
    """Return free heap memory to the system (glibc), so that reusing it counts as growth."""
    libc = _libc()
    try:
        libc.malloc_trim(0)
    except AttributeError:
        pass


def peak_memory_mib(fn: Callable[[], Any], device: torch.device | str = "cpu") -> float | None:
    """Run ``fn`` once and return the memory it added at its peak, in MiB (None where unmeasurable)."""
    device = torch.device(device)
    # Free garbage first: objects collected during ``fn`` would shrink the resident set and hide the peak.
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    _trim()
    if not _reset_peak_rss():
        fn()
        return None
    before = _status_kib("VmRSS")
    fn()
    peak = _status_kib("VmHWM")
    if before is None or peak is None:
        return None
    return max(0, peak - before) / 1024
