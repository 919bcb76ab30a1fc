"""Hard-region scores: boundary IoU, trimap mIoU, thin-class mIoU and the FoR-Net selector's error recall.

Definitions (with formulas) are in docs/METRICS.md. In short, for a label map L (ground truth or
prediction), the edge pixels E(L) are those whose 3 x 3 neighbourhood holds two *evaluated* pixels (ground
truth not ignoreInEval) of different labels; void pixels and the image border make no edges:

* band_w(L) = pixels within Chebyshev distance w - 1 of E(L) (where no void intervenes: the pixels with a
  pixel of another label within distance w).
* boundary IoU of class c: IoU of the inner boundary bands ``G_c & band_d(gt)`` and ``P_c & band_d(pred)``
  over evaluated pixels, summed over images; d scales with the image size.
* trimap mIoU at width w: the official mIoU restricted to evaluated pixels of band_w(gt).
* thin-class mIoU: mean IoU of the thin classes; selector recall: errors inside each Top-K region.

Everything is counted in one ``torch.bincount`` per image over (gt id, predicted id, predicted-boundary
flag, ground-truth distance level), in the official label-id space, so the same histogram also yields the
image's confusion matrix. The bands come from ``morphology.py``; all of it runs on the tensors' device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, DataError
from ..fmt import none_if_nan
from .counting import fast_bincount
from .metrics import class_iou, nanmean
from .morphology import boundary_band, distance_levels
from .space import CITYSCAPES_SPACE, LabelSpace

REFERENCE_SIZE = (1024, 2048)  # widths are given in pixels at this size and scaled with the image


# --------------------------------------------------------------------------------------------------------
# Configuration and scores
# --------------------------------------------------------------------------------------------------------


def scale_width(width: float, height: int, image_width: int) -> int:
    """A width given at 1024 x 2048 in pixels at ``height x image_width`` (by the square root of the area)."""
    scale = math.sqrt(height * image_width / (REFERENCE_SIZE[0] * REFERENCE_SIZE[1]))
    return max(1, int(math.floor(width * scale + 0.5)))


@dataclass(frozen=True)
class HardRegionConfig:
    """Band widths in pixels at 1024 x 2048; other image sizes scale them by the square root of the area
    ratio (rounded, at least 1 px). ``scale_with_size=False`` takes the widths as pixels of every image."""

    boundary_width: float = 3.0
    trimap_widths: tuple[float, ...] = (3.0, 6.0, 12.0, 24.0)
    scale_with_size: bool = True

    def __post_init__(self) -> None:
        widths = (self.boundary_width, *self.trimap_widths)
        if any(not (w > 0 and math.isfinite(w)) for w in widths):
            raise ConfigError(f"Band widths must be positive numbers of pixels; got {widths}.")
        if len(self.thresholds) > 100:
            raise ConfigError("At most 100 distinct band widths are supported.")

    @property
    def thresholds(self) -> tuple[float, ...]:
        """The distinct widths, ascending: the distance levels of the histogram."""
        return tuple(sorted({float(self.boundary_width), *map(float, self.trimap_widths)}))

    def pixel_radii(self, height: int, width: int) -> tuple[int, ...]:
        """The widths in pixels of a ``height x width`` image (non-decreasing, like ``thresholds``)."""
        if not self.scale_with_size:
            return tuple(max(1, int(math.floor(t + 0.5))) for t in self.thresholds)
        return tuple(scale_width(t, height, width) for t in self.thresholds)


@dataclass(frozen=True)
class SelectorScores:
    """How well the FoR-Net Top-K regions cover the errors (one entry per branch / ratio)."""

    ratios: tuple[float, ...]
    error_recall: tuple[float, ...]  # share of wrongly predicted evaluated pixels inside the region
    coverage: tuple[float, ...]  # share of evaluated pixels inside the region
    error_rate_inside: tuple[float, ...]  # share of the region's evaluated pixels that are wrong
    error_rate: float  # share of all evaluated pixels that are wrong

    @property
    def lift(self) -> tuple[float, ...]:
        """error_recall / coverage: 1 means the selector finds errors no better than chance."""
        return tuple(r / c if c else float("nan") for r, c in zip(self.error_recall, self.coverage))

    def to_dict(self) -> dict[str, Any]:
        return {
            "ratios": list(self.ratios),
            "error_recall": list(self.error_recall),
            "coverage": list(self.coverage),
            "lift": [none_if_nan(v) for v in self.lift],
            "error_rate_inside": [none_if_nan(v) for v in self.error_rate_inside],
            "error_rate": none_if_nan(self.error_rate),
        }


@dataclass(frozen=True)
class HardRegionScores:
    """Boundary IoU, trimap mIoU per band width, thin-class IoU (Cityscapes' label set only: else None) and
    (FoR-Net only) selector scores."""

    boundary_width: float
    boundary_iou: dict[str, float]
    trimap_miou: dict[float, float]
    trimap_pixel_share: dict[float, float]  # share of evaluated pixels inside each band
    thin_iou: dict[str, float] | None
    pixel_radii: dict[str, tuple[int, ...]]  # "HxW" -> radii actually used for config.thresholds
    thresholds: tuple[float, ...]
    selector: SelectorScores | None = None

    @property
    def boundary_miou(self) -> float:
        return nanmean(list(self.boundary_iou.values()))

    @property
    def thin_miou(self) -> float:
        return nanmean(list(self.thin_iou.values())) if self.thin_iou else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "boundary_width": self.boundary_width,
            "boundary_miou": none_if_nan(self.boundary_miou),
            "boundary_iou": {k: none_if_nan(v) for k, v in self.boundary_iou.items()},
            "trimap_miou": {_fmt_width(w): none_if_nan(v) for w, v in self.trimap_miou.items()},
            "trimap_pixel_share": {_fmt_width(w): none_if_nan(v) for w, v in self.trimap_pixel_share.items()},
            "thin_miou": none_if_nan(self.thin_miou),
            "thin_iou": None if self.thin_iou is None else {k: none_if_nan(v) for k, v in self.thin_iou.items()},
            "width_reference_size": list(REFERENCE_SIZE),
            "pixel_radii": {
                size: dict(zip(map(_fmt_width, self.thresholds), radii)) for size, radii in self.pixel_radii.items()
            },
            "selector": None if self.selector is None else self.selector.to_dict(),
        }


def _fmt_width(w: float) -> str:
    return f"{w:g}"


# --------------------------------------------------------------------------------------------------------
# Accumulator
# --------------------------------------------------------------------------------------------------------


@dataclass
class _SelectorCounts:
    ratios: tuple[float, ...]
    errors_inside: np.ndarray
    valid_inside: np.ndarray
    errors: int = 0
    valid: int = 0


class HardRegionMetrics:
    """Streaming accumulator of the hard-region scores (inputs in label ids 0..33, as for the official scores,
    or in the ids of another ``space``: evaluation/space.py).

    ``histogram`` counts one image and ``add`` accumulates it (separate so worker threads can count);
    ``update`` does both and returns the image's confusion matrix for :class:`SegmentationMetrics`.
    """

    def __init__(self, config: HardRegionConfig | None = None, space: LabelSpace = CITYSCAPES_SPACE) -> None:
        self.config = config or HardRegionConfig()
        self.space = space
        self.reset()

    def reset(self) -> None:
        n = self.space.size
        self._levels = len(self.config.thresholds) + 1
        self._hist = np.zeros((n, n, 2, self._levels), dtype=np.int64)
        self._radii: dict[str, tuple[int, ...]] = {}
        self._selector: _SelectorCounts | None = None

    def histogram(self, pred_ids: torch.Tensor, gt_ids: torch.Tensor) -> torch.Tensor:
        """Counts ``[gt id, predicted id, predicted-boundary flag, distance level]`` of one ``H x W`` image."""
        if pred_ids.shape != gt_ids.shape or pred_ids.ndim != 2:
            raise DataError(
                f"Expected two H x W maps of the same size, got {tuple(pred_ids.shape)} and {tuple(gt_ids.shape)}."
            )
        h, w = gt_ids.shape
        radii = self.config.pixel_radii(h, w)
        boundary_r = radii[self.config.thresholds.index(float(self.config.boundary_width))]
        gt, pred = gt_ids.to(torch.uint8), pred_ids.to(torch.uint8)  # ids of the space (checked by the caller)
        valid = self.space.evaluated_mask(gt)
        level = distance_levels(gt, radii, valid)
        pred_band = boundary_band(pred, boundary_r, valid)
        levels, n = self._levels, self.space.size
        dtype = torch.int16 if n * n * 2 * levels <= torch.iinfo(torch.int16).max else torch.int32
        # (pred boundary flag, level) fits a byte: build it there, where ops are cheapest
        small = level.add_(pred_band.view(torch.uint8).mul(levels))
        code = gt.to(dtype).mul_(n).add_(pred.to(dtype)).mul_(2 * levels).add_(small.to(dtype))
        return fast_bincount(code, n * n * 2 * levels).view(n, n, 2, levels)

    def add(self, histogram: torch.Tensor | np.ndarray, size: tuple[int, int]) -> None:
        hist = histogram.cpu().numpy() if isinstance(histogram, torch.Tensor) else np.asarray(histogram)
        self._hist += hist
        key = f"{size[0]}x{size[1]}"
        if key not in self._radii:
            self._radii[key] = self.config.pixel_radii(*size)

    def update(self, pred_ids: torch.Tensor, gt_ids: torch.Tensor) -> torch.Tensor:
        """Count one image; returns its confusion matrix (on the input's device)."""
        hist = self.histogram(pred_ids, gt_ids)
        self.add(hist, tuple(gt_ids.shape))
        return hist.sum(dim=(2, 3))

    def update_selector(
        self, pred_ids: torch.Tensor, gt_ids: torch.Tensor, masks: torch.Tensor, ratios: Sequence[float]
    ) -> None:
        """Count errors inside the Top-K masks (``B x n x h x w``, upsampled nearest to ``B x H x W``)."""
        if pred_ids.ndim == 2:
            pred_ids, gt_ids, masks = pred_ids[None], gt_ids[None], masks[None] if masks.ndim == 3 else masks
        if masks.shape[1] != len(ratios):
            raise ConfigError(f"{masks.shape[1]} masks but {len(ratios)} Top-K ratios.")
        if self._selector is None:
            n = len(ratios)
            self._selector = _SelectorCounts(tuple(ratios), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64))
        elif self._selector.ratios != tuple(ratios):
            raise ConfigError(
                f"Top-K ratios changed from {self._selector.ratios} to {tuple(ratios)} during evaluation."
            )
        evaluated = self.space.evaluated_mask(gt_ids)
        wrong = evaluated & (pred_ids != gt_ids)
        up = F.interpolate(masks.float(), size=gt_ids.shape[-2:], mode="nearest") > 0.5
        s = self._selector
        s.errors_inside += (up & wrong[:, None]).sum(dim=(0, 2, 3)).cpu().numpy()
        s.valid_inside += (up & evaluated[:, None]).sum(dim=(0, 2, 3)).cpu().numpy()
        s.errors += int(wrong.sum())
        s.valid += int(evaluated.sum())

    def merge(self, other: HardRegionMetrics) -> None:
        """Add another accumulator's counts (e.g. from another process of a distributed evaluation)."""
        self._hist += other._hist
        self._radii.update(other._radii)
        theirs = other._selector
        if theirs is None:
            return
        if self._selector is None:
            self._selector = _SelectorCounts(theirs.ratios, theirs.errors_inside.copy(), theirs.valid_inside.copy(),
                                             theirs.errors, theirs.valid)
            return
        if self._selector.ratios != theirs.ratios:
            raise ConfigError(f"Cannot merge selector counts for Top-K ratios {theirs.ratios} into {self._selector.ratios}.")
        self._selector.errors_inside += theirs.errors_inside
        self._selector.valid_inside += theirs.valid_inside
        self._selector.errors += theirs.errors
        self._selector.valid += theirs.valid

    @property
    def confusion(self) -> np.ndarray:
        return self._hist.sum(axis=(2, 3))

    def compute(self) -> HardRegionScores:
        cfg, space = self.config, self.space
        hist = self._hist
        k = cfg.thresholds.index(float(cfg.boundary_width))
        inside = hist[..., : k + 1]  # ground-truth distance <= boundary width
        evaluated_rows = hist[space.evaluated]
        gt_band = inside.sum(axis=(1, 2, 3))  # per gt id: evaluated pixels of the class in the gt band
        pred_band = evaluated_rows[:, :, 1, :].sum(axis=(0, 2))  # per predicted id, over evaluated rows
        both = np.array([inside[i, i, 1, :].sum() for i in range(space.size)])
        boundary = {}
        for name, i in zip(space.class_names, space.class_ids):
            union = gt_band[i] + pred_band[i] - both[i]
            boundary[name] = float(both[i]) / union if union else float("nan")
        trimap, share = {}, {}
        total_valid = hist[space.evaluated].sum()
        for j, t in enumerate(cfg.thresholds):
            if t not in cfg.trimap_widths:
                continue
            conf = hist[..., : j + 1].sum(axis=(2, 3))
            trimap[t] = nanmean(list(class_iou(conf, space).values()))
            share[t] = float(conf[space.evaluated].sum()) / total_valid if total_valid else float("nan")
        full_iou = class_iou(hist.sum(axis=(2, 3)), space)
        s = self._selector
        selector = None
        if s is not None:
            selector = SelectorScores(
                ratios=s.ratios,
                error_recall=tuple(float(e) / s.errors if s.errors else float("nan") for e in s.errors_inside),
                coverage=tuple(float(v) / s.valid if s.valid else float("nan") for v in s.valid_inside),
                error_rate_inside=tuple(
                    float(e) / v if v else float("nan") for e, v in zip(s.errors_inside, s.valid_inside)
                ),
                error_rate=float(s.errors) / s.valid if s.valid else float("nan"),
            )
        return HardRegionScores(
            boundary_width=float(cfg.boundary_width),
            boundary_iou=boundary,
            trimap_miou=trimap,
            trimap_pixel_share=share,
            thin_iou={n: full_iou[n] for n in space.thin_classes} if space.thin_classes else None,
            pixel_radii=dict(self._radii),
            thresholds=cfg.thresholds,
            selector=selector,
        )
