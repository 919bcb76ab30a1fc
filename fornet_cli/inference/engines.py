"""How a model's forward pass runs: eager PyTorch (default memory format or channels_last, optionally under
CUDA autocast), ``torch.compile``, or an onnxruntime session of the exported graph.

Every engine maps a normalised ``B x 3 x H x W`` float tensor to float32 logits (``logits``) and, for FoR-Net
models, to a :class:`FornetOutput` with the importance logit and the Top-K masks (``outputs``), so that
:class:`~fornet_cli.inference.predictor.Predictor` runs them all alike. :func:`class_argmax` turns logits
into class indices quickly on the CPU.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..model.outputs import FocusContext, FornetOutput, logits_of


class Engine:
    """A way to run one model. ``name`` says which (shown to the user); ``precision`` selects the tolerance
    of the check against eager PyTorch (``fp32`` or ``fp16``, as export verification)."""

    name: str = "torch"
    precision: str = "fp32"

    def logits(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def outputs(self, x: torch.Tensor) -> FornetOutput:  # pragma: no cover - interface
        raise NotImplementedError

    def tile_logits(self, x: torch.Tensor, focus: FocusContext) -> torch.Tensor:  # pragma: no cover - interface
        """FoR-Net logits of tiles ``x`` run with their images' global context and Top-K thresholds."""
        raise NotImplementedError


class EagerEngine(Engine):
    """Eager PyTorch. ``channels_last`` runs a copy of the model in NHWC (the caller's model is not changed);
    ``autocast`` is a CUDA dtype (``torch.float16``/``torch.bfloat16``) or None."""

    def __init__(self, model: nn.Module, *, channels_last: bool = False, autocast: torch.dtype | None = None) -> None:
        self.channels_last = channels_last
        self.autocast = autocast
        self.model = copy.deepcopy(model).to(memory_format=torch.channels_last) if channels_last else model
        parts = ["torch"] + (["channels_last"] if channels_last else []) + ([f"autocast {_dtype_name(autocast)}"] if autocast else [])
        self.name = " ".join(parts)
        self.precision = "fp16" if autocast is not None else "fp32"

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _context(self, x: torch.Tensor) -> Any:
        if self.autocast is not None and x.device.type == "cuda":
            return torch.autocast("cuda", dtype=self.autocast)
        return nullcontext()

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), self._context(x):
            return logits_of(self.model(self._input(x))).float()

    def outputs(self, x: torch.Tensor) -> FornetOutput:
        _require_forward_all(self.model)
        with torch.inference_mode(), self._context(x):
            out = self.model.forward_all(self._input(x))
        return _float_outputs(out)

    def tile_logits(self, x: torch.Tensor, focus: FocusContext) -> torch.Tensor:
        _require_forward_all(self.model)
        with torch.inference_mode(), self._context(x):
            return self.model.forward_all(self._input(x), focus).logits.float()


class CompiledEngine(EagerEngine):
    """``torch.compile`` of the model (Inductor). Compilation happens on the first call of each input shape."""

    def __init__(self, model: nn.Module, *, channels_last: bool = False, autocast: torch.dtype | None = None) -> None:
        super().__init__(copy.deepcopy(model), channels_last=channels_last, autocast=autocast)
        self.name = self.name.replace("torch", "torch.compile", 1)
        self._forward = torch.compile(self.model.forward, dynamic=False)
        self._forward_all = torch.compile(self.model.forward_all, dynamic=False) if hasattr(self.model, "forward_all") else None

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), self._context(x):
            return logits_of(self._forward(self._input(x))).float()

    def outputs(self, x: torch.Tensor) -> FornetOutput:
        _require_forward_all(self.model)
        assert self._forward_all is not None
        with torch.inference_mode(), self._context(x):
            out = self._forward_all(self._input(x))
        return _float_outputs(out)

    def tile_logits(self, x: torch.Tensor, focus: FocusContext) -> torch.Tensor:
        _require_forward_all(self.model)
        assert self._forward_all is not None
        with torch.inference_mode(), self._context(x):
            return self._forward_all(self._input(x), focus).logits.float()


class OnnxEngine(Engine):
    """An onnxruntime session of a graph with input ``image`` and outputs ``logits`` (and, for FoR-Net models,
    ``importance``, ``masks`` and ``pooled``). Inputs are copied to float32 NumPy on the CPU; outputs come back
    to the input's device. ``tile_session``: a session of the model's focus tile graph (inputs ``image``,
    ``pooled``, ``thresholds``), built on first use by ``make_tile_session``."""

    name = "onnxruntime"

    def __init__(self, session: Any, source: str = "", make_tile_session: Callable[[], Any] | None = None) -> None:
        self.session = session
        self.source = source
        self.make_tile_session = make_tile_session
        self.tile_session: Any = None
        self.output_names = [o.name for o in session.get_outputs()]
        providers = session.get_providers()
        if providers and providers[0] != "CPUExecutionProvider":
            self.name = f"onnxruntime {providers[0].replace('ExecutionProvider', '')}"

    def _run(self, names: list[str], x: torch.Tensor, session: Any = None, **extra: torch.Tensor) -> list[np.ndarray]:
        """``session`` (default: the image graph's) on ``x`` as ``image`` and any ``extra`` named inputs."""
        feed = {k: v.detach().to("cpu", torch.float32).contiguous().numpy() for k, v in {"image": x, **extra}.items()}
        return (session or self.session).run(names, feed)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        (logits,) = self._run([self.output_names[0]], x)
        return torch.from_numpy(logits).to(x.device)

    def outputs(self, x: torch.Tensor) -> FornetOutput:
        if len(self.output_names) < 3:
            raise ConfigError(f"The ONNX graph {self.source} has no importance or Top-K masks (outputs {self.output_names}).")
        arrays = self._run(self.output_names[:4], x)
        logits, importance, masks, *pooled = (torch.from_numpy(a).to(x.device) for a in arrays)
        return FornetOutput(logits, importance, masks, None, pooled[0] if pooled else None)

    def tile_logits(self, x: torch.Tensor, focus: FocusContext) -> torch.Tensor:
        if self.tile_session is None:
            if self.make_tile_session is None:
                raise ConfigError(f"The ONNX graph {self.source} cannot run focus tiles.")
            self.tile_session = self.make_tile_session()
        (logits,) = self._run(["logits"], x, self.tile_session, pooled=focus.pooled, thresholds=focus.thresholds)
        return torch.from_numpy(logits).to(x.device)


def _float_outputs(out: FornetOutput) -> FornetOutput:
    pooled = None if out.pooled is None else out.pooled.float()
    return FornetOutput(out.logits.float(), out.importance.float(), out.masks, None, pooled)


def _require_forward_all(model: nn.Module) -> None:
    if not hasattr(model, "forward_all"):
        raise ConfigError(f"{type(model).__name__} is not a FoR-Net model: it has no importance or Top-K masks.")


def _dtype_name(dtype: torch.dtype | None) -> str:
    return str(dtype).replace("torch.", "")


def class_argmax(logits: torch.Tensor, compact: bool = False) -> torch.Tensor:
    """``logits.argmax(dim=1)`` (``B x C x H x W`` -> ``B x H x W`` int64; uint8 with ``compact`` when there are
    at most 256 classes), the same indices (the first of equal maxima), computed fast on the CPU.

    PyTorch's argmax over the channel axis of a contiguous NCHW tensor walks memory with a stride of H * W
    (measured 0.22-0.30 s for 19 x 1024 x 2048 on 2 cores); a running maximum over the channels reads each
    plane once (about 25 ms). Channels-last tensors and other devices use ``argmax`` itself, which is fast
    there. NaN logits, which no working model produces, may give other indices than ``argmax``.
    """
    small = compact and logits.shape[1] <= 256
    if logits.device.type != "cpu" or logits.ndim != 4 or not logits.is_contiguous() or logits.shape[1] < 2:
        index = logits.argmax(dim=1)
        return index.to(torch.uint8) if small else index
    scores = logits.detach().numpy()
    best = scores[:, 0].copy()
    index = np.zeros(best.shape, dtype=np.uint8 if scores.shape[1] <= 256 else np.int64)
    for c in range(1, scores.shape[1]):
        plane = scores[:, c]
        higher = plane > best
        np.maximum(best, plane, out=best)
        index[higher] = c
    out = torch.from_numpy(index)
    return out if small or out.dtype == torch.int64 else out.long()
