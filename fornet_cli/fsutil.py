"""Atomic file writes: a temporary file next to the target, then ``os.replace``.

A crash, a kill -9 or a full disk at any moment leaves either the old file or the new one, never a
half-written one, and never a stray temporary file when Python gets to clean up.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .errors import ConfigError


@contextmanager
def atomic_path(target: str | os.PathLike, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path in ``target``'s folder; on success it replaces ``target``.

    ``durable=True`` also fsyncs the file before the rename (checkpoints: survive a power cut too).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    # os.open applies the umask (mkstemp would make the file private), so the result has the same
    # permissions as a file written with open(); O_EXCL: never reuse another writer's temporary file.
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def user_cache_dir() -> Path:
    """fornet's cache folder: ``$FORNET_CACHE``, else ``$XDG_CACHE_HOME/fornet``, else ``~/.cache/fornet``."""
    explicit = os.environ.get("FORNET_CACHE")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fornet"


def atomic_write_text(target: str | os.PathLike, text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_failure(target: str | os.PathLike, exc: BaseException) -> str:
    """Why a write to ``target`` failed, for a message: the OS's reason and the space left on that disk.

    (A full disk does not always surface as OSError: torch.save's zip writer raises a RuntimeError, with the
    OSError of the failed write as its context when it wrote through a Python file.)
    """
    cause: BaseException | None = exc
    for _ in range(8):  # a short walk down the chain (chains are short; never loop on a cycle)
        if cause is None or (isinstance(cause, OSError) and cause.strerror):
            break
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, OSError) and cause.strerror:
        reason = cause.strerror
    else:
        text = str(exc).strip().splitlines()
        reason = f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
    folder = Path(target).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return reason
    return f"{reason}; {human_bytes(free)} free on that disk"


def human_bytes(n: int) -> str:
    """``n`` bytes for people: 38.2 MB."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def check_output_folder(
    out: str | os.PathLike, inputs: Sequence[str | os.PathLike], *, allow_inside: bool = False, allow_hint: str = ""
) -> None:
    """Refuse an output folder that is a file, or that lies inside an input folder (its files would be read
    as inputs next time, and fornet never writes into the user's input tree unless asked).

    ``allow_hint`` names the option that allows writing inside the inputs, for the message (e.g.
    ``--allow-input-tree``); ``allow_inside=True`` skips that check.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; outputs are written into a folder. Choose a folder (new or existing).")
    if allow_inside:
        return
    out_abs = out.resolve()
    for raw in inputs:
        folder = Path(raw)
        if folder.is_dir() and (out_abs == folder.resolve() or folder.resolve() in out_abs.parents):
            asked = f" unless asked ({allow_hint})" if allow_hint else ""
            raise ConfigError(
                f"--out {out} lies inside the input folder {folder}: its files would be read as inputs next time, "
                f"and fornet does not write into the input tree{asked}. Choose an output folder outside it."
            )
