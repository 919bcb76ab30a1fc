"""Optional packages (the ``export`` extra: onnx, onnxruntime, onnxscript) and the message that names them.

Commands that need one check up front with :func:`require_all`, so that a missing package is reported before
any work starts (not after minutes of training), with the line that installs it.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType

from .errors import MissingDependencyError

EXPORT_EXTRA = "pip install 'fornet-cli[export]'"
ONNX_PACKAGES: tuple[str, ...] = ("onnx", "onnxruntime")  # export and verification, ONNX prediction


def require(module: str, purpose: str) -> ModuleType:
    """Import an optional package, or raise :class:`MissingDependencyError` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # also raised when sys.modules[module] is None (a package blocked on purpose)
        raise MissingDependencyError(
            f"{purpose} needs the optional package {module!r}, which cannot be imported ({exc}). "
            f"Install the export extra: {EXPORT_EXTRA}"
        ) from None


def require_all(modules: Sequence[str], purpose: str) -> None:
    """:func:`require` every module (the first missing one is reported)."""
    for module in modules:
        require(module, purpose)
