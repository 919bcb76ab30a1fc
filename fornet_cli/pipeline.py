"""Overlapping work on threads with bounded memory: an ordered ``map`` over a thread pool.

Decoding (libpng, Pillow), NumPy, torch and onnxruntime release the GIL, so reading the next images on
worker threads overlaps with the model running on the current one. At most ``ahead`` items are in flight,
so a folder of 10,000 images never holds more than that many decoded images.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")
_END = object()


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int, ahead: int | None = None,
                name: str = "fornet") -> Iterator[R]:
    """``map(fn, items)`` computed on ``workers`` threads, yielded in order, with at most ``ahead`` (default
    ``2 * workers``) results pending. ``workers <= 0`` runs ``fn`` in the caller's thread. An exception of
    ``fn`` is raised where its result would have been yielded; pending work is cancelled when the consumer
    stops early."""
    if workers <= 0:
        yield from map(fn, items)
        return
    limit = max(1, ahead if ahead is not None else 2 * workers)
    pool = ThreadPoolExecutor(workers, thread_name_prefix=name)
    pending: deque[Future] = deque()
    try:
        it = iter(items)
        for item in it:
            pending.append(pool.submit(fn, item))
            if len(pending) >= limit:
                break
        while pending:
            result = pending.popleft().result()
            nxt = next(it, _END)
            if nxt is not _END:
                pending.append(pool.submit(fn, nxt))  # type: ignore[arg-type]
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


_M_MMAP_THRESHOLD = -3  # mallopt parameter number in glibc's malloc.h


def release_large_buffers(threshold: int = 1 << 20) -> bool:
    """Have glibc map every allocation of ``threshold`` bytes or more on its own and unmap it when freed.

    Decoded images (6 MB), normalised ones (24 MB) and full-size logits (152 MB) are allocated and freed once
    per image, on several threads. glibc's mmap threshold otherwise grows to 32 MiB as such blocks are freed,
    after which they come from per-thread heaps that fragment and stay resident, so the resident set of a long
    run creeps up with the number of images. Process-wide; the commands call it, the library does not. False
    where the C library is not glibc.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):
        return False
