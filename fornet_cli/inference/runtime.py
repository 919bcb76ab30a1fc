"""Which runtime runs a model (``--runtime auto|torch|onnxruntime|compile``), checked once against eager PyTorch.

``auto`` takes what measured fastest on the device (docs/BENCHMARKS.md, "Runtimes"):

* CPU: onnxruntime on the model's graph, exported on the fly and cached (``onnx_cache.py``); 1.4-6x eager
  PyTorch in channels_last and more against the default memory format. Without onnxruntime installed:
  eager PyTorch in channels_last (1.3-1.9x the default format).
* CUDA: eager PyTorch in channels_last under autocast (``amp_dtype``, float16 by default; ``--no-amp``: float32).

``torch`` is plain eager PyTorch, exactly as before runtimes existed: the default memory format, autocast on
CUDA as ``--amp`` says. ``compile`` is ``torch.compile`` (slow to start; see the benchmarks for where it pays).

Every other path than ``torch`` is compared with eager PyTorch (float32, no autocast) on the first input it
runs, with export verification's tolerances (``export/verify.py``: fp32 for onnxruntime, channels_last and
compile, fp16 under autocast), including the Top-K mask counts when the importance and masks are asked for.
When it disagrees, or fails to build or run, one line says so and eager PyTorch takes over; a disagreeing
cached graph is deleted so that the next run rebuilds it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError, FornetError, MissingDependencyError
from ..export.verify import Check, compare
from ..extras import ONNX_PACKAGES, require_all
from ..model.outputs import FocusContext, FornetOutput
from .engines import CompiledEngine, EagerEngine, Engine, OnnxEngine

RUNTIMES: tuple[str, ...] = ("auto", "torch", "onnxruntime", "compile")
Notify = Callable[[str], None]
FIRST_INPUT, FIRST_TILES = "first input", "first focus tiles"


@dataclass
class RuntimeInfo:
    """What ran: ``name`` (e.g. ``onnxruntime``, ``torch channels_last``), what was asked for, and the check."""

    requested: str
    name: str = "torch"
    device: str = "cpu"
    graph: str | None = None  # onnxruntime: the graph file, and whether it came from the cache
    cached: bool | None = None
    check: Check | None = None
    notes: list[str] = field(default_factory=list)  # why another runtime than asked for runs

    def line(self) -> str:
        """One line for stderr."""
        text = f"Runtime: {self.name} on {self.device} (--runtime {self.requested}"
        if self.cached is not None:
            text += ", graph from the cache" if self.cached else ", graph exported and cached"
        if self.check is not None and self.check.passed:
            text += (f"; matches eager PyTorch on the first input: max |diff| {self.check.max_abs_diff:.2g}, argmax "
                     f"agreement {100 * self.check.argmax_agreement:.3f} %")
        text += ")"
        return text + "".join(f"; {note}" for note in self.notes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "name": self.name,
            "device": self.device,
            "graph": self.graph,
            "cached": self.cached,
            "check": None if self.check is None else self.check.to_dict(),
            "notes": list(self.notes),
        }


def check_runtime(name: str) -> str:
    if name not in RUNTIMES:
        raise ConfigError(f"Unknown runtime {name!r}; choose from {', '.join(RUNTIMES)}.")
    return name


def auto_choice(device: torch.device | str) -> str:
    """What ``auto`` runs on ``device``: ``onnxruntime``, ``channels_last`` (eager) or ``cuda`` (eager
    channels_last + autocast)."""
    if torch.device(device).type == "cuda":
        return "cuda"
    try:
        require_all(ONNX_PACKAGES, "--runtime auto")
    except MissingDependencyError:
        return "channels_last"
    return "onnxruntime"


def is_exported(model: nn.Module) -> bool:
    """Whether ``model`` already runs an exported graph (``--weights model.onnx``)."""
    return hasattr(model, "session") and hasattr(model, "input_name")


class Runtime:
    """Runs ``model`` with the engine ``requested`` resolves to, checked against eager on the first call.

    ``amp_dtype``: the autocast dtype on CUDA (None: float32). ``notify`` hears the runtime line once the
    engine is known and checked, and every fallback.
    """

    def __init__(self, model: nn.Module, requested: str, *, amp_dtype: torch.dtype | None = None,
                 notify: Notify | None = None) -> None:
        self.model = model
        self.requested = check_runtime(requested)
        self.amp_dtype = amp_dtype
        self.notify = notify or (lambda message: None)
        param = next(model.parameters(), None)
        self.device = param.device if param is not None else torch.device("cpu")
        self.info = RuntimeInfo(requested, device=str(self.device))
        self.plain = EagerEngine(model, autocast=amp_dtype if self.device.type == "cuda" else None)
        self.reference = EagerEngine(model)  # float32 eager: what every other path is checked against
        self.engine: Engine | None = None
        # What the accelerated engine still has to be checked on: its first input, its first focus tiles.
        self.unchecked: set[str] = set()

    # ------------------------------------------------------------------------------------------ building

    def prepare(self) -> Runtime:
        """Build the engine now (an ONNX export, a compile), not on the first image."""
        if self.engine is None:
            self.engine = self._build()
            if self.engine is not self.plain and not isinstance(self.engine, _Passthrough):
                self.unchecked = {FIRST_INPUT, FIRST_TILES}
            else:  # nothing to check: say now what runs
                self.info.name = self.engine.name
                self.notify(self.info.line())
        return self

    def _build(self) -> Engine:
        if is_exported(self.model):  # whatever was asked for: the file is an onnxruntime graph
            if self.requested not in ("auto", "onnxruntime", "torch"):
                self.info.notes.append(f"an exported ONNX file runs in onnxruntime, not {self.requested}")
            return _Passthrough(self.model)
        choice = self.requested
        if choice == "auto":
            choice = auto_choice(self.device)
            if choice == "channels_last":
                self.info.notes.append("onnxruntime is not installed (pip install 'fornet-cli[export]'), so eager "
                                       "PyTorch in channels_last runs instead")
        if choice == "torch":
            return self.plain
        if choice == "onnxruntime":
            require_all(ONNX_PACKAGES, "--runtime onnxruntime")  # asked for explicitly: an error, not a fallback
        try:
            return self._engine(choice)
        except MissingDependencyError:
            raise
        except (FornetError, RuntimeError, OSError, ValueError, TypeError) as exc:
            return self._fall_back(f"{choice} could not be built ({_short(exc)})")

    def _engine(self, choice: str) -> Engine:
        if choice == "channels_last":
            return EagerEngine(self.model, channels_last=True)
        if choice == "cuda":
            return EagerEngine(self.model, channels_last=True, autocast=self.amp_dtype)
        if choice == "compile":
            autocast = self.amp_dtype if self.device.type == "cuda" else None
            return CompiledEngine(self.model, channels_last=True, autocast=autocast)
        return self._onnx_engine()

    def _onnx_engine(self) -> Engine:
        from ..export.onnx_session import create_session
        from .onnx_cache import cached_graph, cached_tile_graph

        all_outputs = hasattr(self.model, "forward_all")
        graph, cached = cached_graph(self.model, all_outputs=all_outputs, say=self.info.notes.append)
        self.info.graph, self.info.cached = str(graph), cached
        device = "cuda" if self.device.type == "cuda" else "cpu"

        def tile_session() -> Any:  # built only when focus inference runs tiles
            return create_session(cached_tile_graph(self.model, say=self.info.notes.append)[0], device)

        return OnnxEngine(create_session(graph, device), str(graph), tile_session if all_outputs else None)

    def _fall_back(self, why: str) -> Engine:
        self.info.notes.append(f"{why}: fell back to eager PyTorch")
        self.info.name, self.info.graph, self.info.cached = self.plain.name, None, None
        self.unchecked.clear()
        return self.plain

    # ------------------------------------------------------------------------------------------ running

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self._run("logits", x)

    def outputs(self, x: torch.Tensor) -> FornetOutput:
        return self._run("outputs", x)

    def tile_logits(self, x: torch.Tensor, focus: FocusContext) -> torch.Tensor:
        """Logits of FoR-Net tiles run with their image's context (focus inference); an accelerated engine's
        first tiles are checked against eager PyTorch as its first input is."""
        return self._run("tile_logits", x, focus)

    def _run(self, what: str, x: torch.Tensor, *args: Any) -> Any:
        self.prepare()
        assert self.engine is not None
        first = FIRST_TILES if what == "tile_logits" else FIRST_INPUT
        if first not in self.unchecked:
            return getattr(self.engine, what)(x, *args)
        self.unchecked.discard(first)
        reference = getattr(self.reference, what)(x, *args)
        try:
            got = getattr(self.engine, what)(x, *args)
            check = _compare(reference, got, self.engine, what)
        except (FornetError, RuntimeError, OSError, ValueError, TypeError) as exc:
            self._failed(f"{self.engine.name} failed on the {first} ({_short(exc)})")
            return getattr(self.plain, what)(x, *args) if self.plain.autocast is not None else reference
        if not check.passed:
            self._failed(
                f"{self.engine.name} disagrees with eager PyTorch on the {first} (max |diff| "
                f"{check.max_abs_diff:.3g}, tolerance {check.tolerance:.3g}; argmax agreement "
                f"{100 * check.argmax_agreement:.3f} %{'' if check.topk_counts_match is not False else '; Top-K counts differ'})"
            )
            return getattr(self.plain, what)(x, *args) if self.plain.autocast is not None else reference
        if first == FIRST_INPUT:  # the runtime line is said once, when the image check passes
            self.info.name, self.info.check = self.engine.name, check
            self.notify(self.info.line())
        return got

    def _failed(self, why: str) -> None:
        if self.info.graph is not None and self.info.cached is not None:
            from .onnx_cache import discard

            discard(Path(self.info.graph))  # never trust it again: the next run exports anew
        self.engine = self._fall_back(why)
        self.notify(self.info.line())


class _Passthrough(Engine):
    """A model that is already an onnxruntime graph (``OnnxModel``)."""

    name = "onnxruntime (exported file)"

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def outputs(self, x: torch.Tensor) -> FornetOutput:
        raise ConfigError("An exported ONNX model computes the segmentation only, without importance or Top-K masks.")


def _compare(reference: Any, got: Any, engine: Engine, what: str) -> Check:
    if what != "outputs":  # logits, tile_logits
        return compare(reference.cpu(), got.cpu(), engine.precision, engine.name)
    check = compare(reference.logits.cpu(), got.logits.cpu(), engine.precision, engine.name)
    counts = reference.masks.flatten(2).sum(2).float().cpu()
    same = bool(torch.equal(counts, got.masks.flatten(2).sum(2).float().cpu()))
    return replace(check, topk_counts_match=same)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
