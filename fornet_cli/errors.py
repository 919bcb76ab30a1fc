"""Typed errors. Every message says what went wrong *and* what to do about it.

The CLI catches :class:`FornetError` in one place, prints ``Error: <message>`` and exits 1.
"""

from __future__ import annotations


class FornetError(Exception):
    """Base class for every error fornet raises on purpose."""


class UnknownModelError(FornetError, KeyError):
    """A model name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(FornetError, ValueError):
    """A setting with an invalid value."""


class DataError(FornetError):
    """A dataset, image or label that cannot be used."""


class WeightsError(FornetError):
    """Weights that cannot be found, downloaded, verified or loaded."""


class ChecksumError(WeightsError):
    """A downloaded or cached file whose hash differs from the expected one."""


class OutputError(FornetError):
    """An output that could not be written (full disk, permissions). Writes are atomic: the previous version
    of the file, if any, is intact, and no half-written file is left."""


class ExportError(FornetError):
    """An export that failed or did not verify."""


class MissingDependencyError(FornetError, ImportError):
    """An optional package is needed; the message names the extra to install."""


def close_matches(name: str, choices: list[str], n: int = 3) -> str:
    """A ' Did you mean ...?' suffix for an unknown name, or '' when nothing is close."""
    import difflib

    hits = difflib.get_close_matches(name, choices, n=n, cutoff=0.5)
    return f" Did you mean {', '.join(repr(h) for h in hits)}?" if hits else ""


def from_loader_worker(exc: FornetError) -> FornetError:
    """The same error without the worker's traceback that a DataLoader worker process puts into the message.

    torch re-raises a worker's exception as ``type(exc)("Caught X in DataLoader worker process N.\\nOriginal
    Traceback ...\\nmodule.X: message")``; the user should see only ``message``.
    """
    text = str(exc)
    if not text.startswith("Caught ") or "DataLoader worker" not in text.split("\n", 1)[0]:
        return exc
    marker = f"{type(exc).__module__}.{type(exc).__qualname__}: "
    _, found, message = text.rpartition(marker)
    return type(exc)(message.strip()) if found else exc
