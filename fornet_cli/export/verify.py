"""How an export is verified: inputs, sizes, the comparison with eager PyTorch and its tolerances.

A check passes when ``max |exported - eager| <= atol * max(1, max |eager logit|)`` and the argmax (the
predicted class) agrees on at least ``min_agreement`` of the pixels. docs/EXPORT.md gives the rationale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.normalize import normalize
from ..errors import ExportError
from ..model.outputs import logits_of
from ..weights.format import ModelMeta

TOLERANCE = {"fp32": 1e-3, "fp16": 5e-2, "exact": 1e-6}
MIN_AGREEMENT = {"fp32": 0.999, "fp16": 0.99, "exact": 1.0}


@dataclass(frozen=True)
class Check:
    """One comparison of the exported model with eager PyTorch."""

    shape: tuple[int, ...]  # the input's
    runtime: str
    max_abs_diff: float
    argmax_agreement: float
    tolerance: float  # the max-abs-diff bound that applied (already scaled by the logit range)
    min_agreement: float
    topk_counts_match: bool | None = None  # all-outputs ONNX: every branch mask holds the eager K positions

    @property
    def passed(self) -> bool:
        return (
            self.max_abs_diff <= self.tolerance
            and self.argmax_agreement >= self.min_agreement
            and self.topk_counts_match is not False
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "shape": list(self.shape), "passed": self.passed}


def scene_batch(batch: int, height: int, width: int, meta: ModelMeta, seed: int = 0) -> torch.Tensor:
    """Normalised synthetic street scenes: inputs with the statistics of real frames, reproducible."""
    from ..data.scenes import render_scene

    images = [render_scene(np.random.default_rng(seed + i), (height, width)).image for i in range(batch)]
    return normalize(np.stack(images), meta.mean, meta.std)


def verification_shapes(height: int, width: int, dynamic: bool) -> list[tuple[int, int, int, int]]:
    """The requested size; for a dynamic export also a second batch size and image size, so that a
    graph whose shapes (or Top-K counts) were frozen at the trace size fails."""
    shapes = [(1, 3, height, width)]
    if dynamic:
        shapes.append((2, 3, _round32(height * 0.5), _round32(width * 0.375)))
    return shapes


def trace_shape(height: int, width: int, dynamic: bool) -> tuple[int, int, int, int]:
    """The example input an exporter traces: the fixed size of a static export; for a dynamic one a
    small size unlike either verification size (cheaper to trace, and a stricter test)."""
    if not dynamic:
        return (1, 3, height, width)
    return (1, 3, _round32(height * 0.25), _round32(width * 0.3125))


def _round32(value: float) -> int:
    return max(32, int(round(value / 32)) * 32)


def eager(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The reference: float32 logits of eager PyTorch."""
    with torch.inference_mode():
        return logits_of(model(x)).float()


def compare(
    reference: torch.Tensor | np.ndarray,
    exported: torch.Tensor | np.ndarray,
    kind: str,
    runtime: str,
    tolerance: float | None = None,
    shape: Sequence[int] | None = None,
) -> Check:
    """Max |difference| and argmax agreement of two ``B x C x H x W`` logit arrays.

    kind: ``fp32``, ``fp16`` or ``exact`` (selects the tolerances); ``tolerance`` overrides atol;
    ``shape``: the input's, for the report.
    """
    ref = torch.as_tensor(np.asarray(reference, dtype=np.float32))
    got = torch.as_tensor(np.asarray(exported, dtype=np.float32))
    if ref.shape != got.shape:
        raise ExportError(
            f"The exported model returned logits of shape {tuple(got.shape)}, eager PyTorch {tuple(ref.shape)}."
        )
    diff = float((ref - got).abs().max()) if ref.numel() else 0.0
    if math.isnan(diff) or not bool(torch.isfinite(got).all()):
        diff = float("inf")
    agreement = float((ref.argmax(1) == got.argmax(1)).float().mean())
    atol = (tolerance if tolerance is not None else TOLERANCE[kind]) * max(1.0, float(ref.abs().max()))
    where = tuple(shape) if shape is not None else tuple(ref.shape)
    return Check(where, runtime, diff, agreement, atol, MIN_AGREEMENT[kind])


def require_passed(checks: Sequence[Check], what: str) -> None:
    """Raise :class:`ExportError` describing the first failed check."""
    failed = [c for c in checks if not c.passed]
    if failed:
        c = failed[0]
        raise ExportError(
            f"The {what} does not match eager PyTorch at input {'x'.join(map(str, c.shape))} ({c.runtime}): "
            f"max |diff| {c.max_abs_diff:.3g} (tolerance {c.tolerance:.3g}), argmax agreement "
            f"{100 * c.argmax_agreement:.3f}% (at least {100 * c.min_agreement:.1f}%)"
            + ("" if c.topk_counts_match is not False else ", Top-K counts differ")
            + ". Nothing was written. See docs/EXPORT.md (tolerances; --exporter, --tolerance)."
        )
