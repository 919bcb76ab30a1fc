"""Does the FoR-Net selector find the model's errors, and does it beat the obvious heuristic?

For an image with ground truth let V be its evaluated pixels (label not ignoreInEval) and W the wrongly
predicted ones among them. A region R of the image (a Top-K mask upsampled by nearest neighbour, or a
band) has, as in docs/METRICS.md ("Selector error recall"):

    coverage     = |V ∩ R| / |V|      (the area it spends)
    error recall = |W ∩ R| / |W|      (the errors it finds)
    lift         = error recall / coverage     (1 = no better than chance)

Set-level numbers sum the counts over the images with ground truth. The baseline is the band of pixels
within d pixels of a *predicted* boundary (``morphology.boundary_band`` of the prediction alone: like the
selector it needs no ground truth). It is reported

* at a fixed d (``band_width``, pixels at 1024 x 2048 scaled with the image size, as ``fornet eval``'s
  band widths), and
* area-matched, at the coverage the selector spends (:mod:`fornet_cli.hardness.summary`); for that every
  image counts the bands of ``CURVE_WIDTHS`` too,
* on the selector's grid: as many cells as the selector takes, those holding the most pixels of the fixed-d
  band (:mod:`fornet_cli.hardness.regions`), the comparison at equal resolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, DataError
from ..evaluation.counting import confusion_matrix, evaluated_mask, fast_bincount, to_label_ids
from ..evaluation.hard_regions import scale_width
from ..evaluation.metrics import class_iou, nanmean
from ..evaluation.morphology import boundary_band, edge_distance, edges
from ..fmt import none_if_nan
from .regions import densest_cells, gap_regions

# Band widths (pixels) of the baseline's coverage curve: every width up to 32, then coarser steps up to
# 1024 px, beyond which a band covers a whole Cityscapes frame.
CURVE_WIDTHS: tuple[int, ...] = (
    *range(1, 33), 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640, 768, 1024,
)
DEFAULT_BAND_WIDTH = 12.0  # pixels at 1024 x 2048 (3 px at 256 x 512), a middle trimap width of fornet eval


# --------------------------------------------------------------------------------------------------------
# Counts
# --------------------------------------------------------------------------------------------------------


@dataclass
class RegionCounts:
    """Evaluated and wrong pixels, in total and inside each of ``n`` regions (summable over images)."""

    valid: int
    errors: int
    valid_inside: np.ndarray  # int64, n
    errors_inside: np.ndarray  # int64, n

    @classmethod
    def zeros(cls, n: int) -> RegionCounts:
        return cls(0, 0, np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64))

    def __add__(self, other: RegionCounts) -> RegionCounts:
        return RegionCounts(
            self.valid + other.valid,
            self.errors + other.errors,
            self.valid_inside + other.valid_inside,
            self.errors_inside + other.errors_inside,
        )

    @property
    def coverage(self) -> tuple[float, ...]:
        return tuple(div(v, self.valid) for v in self.valid_inside)

    @property
    def error_recall(self) -> tuple[float, ...]:
        return tuple(div(e, self.errors) for e in self.errors_inside)

    @property
    def lift(self) -> tuple[float, ...]:
        return tuple(div(r, c) for r, c in zip(self.error_recall, self.coverage))

    @property
    def error_rate(self) -> float:
        return div(self.errors, self.valid)


def div(num: float, den: float) -> float:
    return float(num) / float(den) if den else float("nan")


def count_regions(regions: torch.Tensor, valid: torch.Tensor, wrong: torch.Tensor) -> RegionCounts:
    """Counts of ``n x H x W`` boolean regions over the ``H x W`` evaluated (``valid``) and ``wrong`` pixels."""
    if regions.shape[-2:] != valid.shape or wrong.shape != valid.shape:
        raise DataError(f"Region maps {tuple(regions.shape)} and pixel maps {tuple(valid.shape)} differ in size.")
    wrong = wrong & valid
    return RegionCounts(
        int(valid.sum()),
        int(wrong.sum()),
        (regions & valid).sum(dim=(-2, -1)).to(torch.int64).numpy(),
        (regions & wrong).sum(dim=(-2, -1)).to(torch.int64).numpy(),
    )


def topk_regions(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``n x h x w`` Top-K masks at the feature grid -> ``n x H x W`` booleans (nearest, as evaluation does)."""
    return F.interpolate(masks[None].float(), size=size, mode="nearest")[0] > 0.5


def predicted_distance(pred_train: torch.Tensor) -> torch.Tensor:
    """float32 ``H x W``: each pixel's distance to the nearest *predicted* boundary (``edge_distance``), so that
    ``boundary_band(pred, w) == (distance <= w - 1)``."""
    # valid=None: the heuristic sees only the prediction, as the selector does
    return torch.from_numpy(edge_distance(edges(pred_train.to(torch.uint8))))


def band_curve(
    pred_train: torch.Tensor,
    valid: torch.Tensor,
    wrong: torch.Tensor,
    widths: Sequence[int],
    distance: torch.Tensor | None = None,
) -> RegionCounts:
    """Counts inside the bands of width ``widths`` (non-decreasing) around the *predicted* boundaries
    (``boundary_band(pred, w)`` for each w, all from one distance transform; ``distance``: that transform,
    :func:`predicted_distance`, when the caller has it already)."""
    if any(b < a for a, b in zip(widths, widths[1:])) or (widths and widths[0] < 1):
        raise ConfigError(f"Band widths must be positive and non-decreasing; got {tuple(widths)}.")
    valid_in = np.zeros(len(widths), dtype=np.int64)
    wrong_in = np.zeros(len(widths), dtype=np.int64)
    wrong = wrong & valid
    if not widths:
        return RegionCounts(int(valid.sum()), int(wrong.sum()), valid_in, wrong_in)
    # One distance transform (OpenCV) gives every band: band_w = distance <= w - 1. A single bincount of
    # (distance clipped past the widest band, void / right / wrong) then counts all widths at once (about 50
    # per image): 1.7-1.9x faster than 50 incremental bit-packed dilations with popcounts (docs/BENCHMARKS.md).
    top = int(widths[-1])
    bins = 3 * (top + 1)
    dtype = torch.int16 if bins <= torch.iinfo(torch.int16).max else torch.int32
    if distance is None:
        distance = predicted_distance(pred_train)
    distance = distance.clamp(max=top).to(dtype)
    kind = valid.to(dtype).add_(wrong.to(dtype))  # 0 void, 1 right, 2 wrong
    counts = fast_bincount(distance.mul_(3).add_(kind), bins).view(top + 1, 3)
    inside = counts.cumsum(0)  # inside[k]: pixels at distance <= k
    at = torch.as_tensor(widths) - 1
    valid_in[:] = (inside[at, 1] + inside[at, 2]).numpy()
    wrong_in[:] = inside[at, 2].numpy()
    return RegionCounts(int(counts[:, 1:].sum()), int(counts[:, 2].sum()), valid_in, wrong_in)


# --------------------------------------------------------------------------------------------------------
# One image
# --------------------------------------------------------------------------------------------------------


@dataclass
class ImageHardness:
    """The numbers of one image. Fields about errors are None / NaN without ground truth."""

    name: str
    size: tuple[int, int]
    grid: tuple[int, int]
    ratios: tuple[float, ...]
    importance_mean: float  # the image's hardness as the model sees it: mean S over the grid
    importance_max: float
    region_pixels: np.ndarray  # int64 per ratio: the image's pixels inside the Top-K region
    topk: RegionCounts | None = None  # with ground truth: counts inside each Top-K region
    band_width: int = 0  # pixels, the fixed-d baseline band of this image
    band: RegionCounts | None = None  # counts inside the predicted-boundary band of band_width
    curve: RegionCounts | None = None  # counts inside the predicted-boundary bands of curve_widths
    curve_widths: tuple[int, ...] = ()
    gt_band: RegionCounts | None = None  # counts inside the ground-truth band of band_width
    gt_band_in_regions: np.ndarray | None = None  # int64 per ratio: evaluated band pixels inside the region
    ceiling: RegionCounts | None = None  # per ratio: the same number of cells, those holding the most errors
    gap: RegionCounts | None = None  # per ratio: the same number of cells, least sure by the logit gap
    band_cells: RegionCounts | None = None  # per ratio: the same number of cells, most predicted-band pixels
    confusion: np.ndarray | None = None  # 34 x 34 label-id confusion (for the set's mIoU)
    miou: float = float("nan")
    extra: dict[str, Any] = field(default_factory=dict)  # paths etc., copied into to_dict()

    @property
    def has_gt(self) -> bool:
        return self.topk is not None

    @property
    def area(self) -> tuple[float, ...]:
        """Per ratio: share of the image's pixels inside the Top-K region."""
        return tuple(div(v, self.size[0] * self.size[1]) for v in self.region_pixels)

    @property
    def gt_band_inside(self) -> tuple[float, ...]:
        """Per ratio: share of the ground-truth band's evaluated pixels inside the region."""
        if self.gt_band is None or self.gt_band_in_regions is None:
            return tuple(float("nan") for _ in self.ratios)
        return tuple(div(v, self.gt_band.valid_inside[0]) for v in self.gt_band_in_regions)

    @property
    def error_rate(self) -> float:
        return self.topk.error_rate if self.topk is not None else float("nan")

    def to_dict(self) -> dict[str, Any]:
        topk = []
        for i, r in enumerate(self.ratios):
            row: dict[str, Any] = {"ratio": r, "area": none_if_nan(self.area[i])}
            if self.topk is not None:
                row.update(
                    coverage=none_if_nan(self.topk.coverage[i]),
                    error_recall=none_if_nan(self.topk.error_recall[i]),
                    lift=none_if_nan(self.topk.lift[i]),
                    gt_band_inside=none_if_nan(self.gt_band_inside[i]),
                    ceiling_error_recall=None if self.ceiling is None else none_if_nan(self.ceiling.error_recall[i]),
                    gap_error_recall=None if self.gap is None else none_if_nan(self.gap.error_recall[i]),
                    band_cells_error_recall=None if self.band_cells is None else none_if_nan(
                        self.band_cells.error_recall[i]),
                )
            topk.append(row)
        out: dict[str, Any] = {
            "name": self.name,
            **self.extra,
            "size": list(self.size),
            "grid": list(self.grid),
            "hardness": self.importance_mean,
            "importance_max": self.importance_max,
            "has_ground_truth": self.has_gt,
            "miou": none_if_nan(self.miou),
            "error_rate": none_if_nan(self.error_rate),
            "topk": topk,
            "band": None,
            "gt_band": None,
        }
        if self.band is not None and self.gt_band is not None:
            out["band"] = region_dict(self.band, 0, width_px=self.band_width)
            out["gt_band"] = region_dict(self.gt_band, 0, width_px=self.band_width)
        return out


def region_dict(counts: RegionCounts, i: int, **extra: Any) -> dict[str, Any]:
    return {
        **extra,
        "coverage": none_if_nan(counts.coverage[i]),
        "error_recall": none_if_nan(counts.error_recall[i]),
        "lift": none_if_nan(counts.lift[i]),
    }


@dataclass(frozen=True)
class ImageMaps:
    """Full-resolution boolean maps behind an image's numbers (its figure, the band cells)."""

    evaluated: torch.Tensor
    wrong: torch.Tensor
    gt_band: torch.Tensor
    pred_band: torch.Tensor  # the fixed-d band around the predicted boundaries (prediction only)


def analyze_image(
    pred_train: torch.Tensor,
    importance_logit: torch.Tensor,
    masks: torch.Tensor,
    ratios: Sequence[float],
    gt_ids: torch.Tensor | None = None,
    *,
    name: str = "",
    band_width: float = DEFAULT_BAND_WIDTH,
    curve_widths: Sequence[int] = CURVE_WIDTHS,
    gap: torch.Tensor | None = None,
) -> tuple[ImageHardness, ImageMaps | None]:
    """The numbers of one image (CPU tensors).

    ``pred_train``: ``H x W`` predicted train ids; ``importance_logit``: ``h x w`` z; ``masks``: ``n x h x w``
    Top-K masks, one per ratio; ``gt_ids``: ``H x W`` Cityscapes label ids (0..33) or None.
    ``band_width``: the fixed baseline width in pixels at 1024 x 2048 (scaled with the image size).
    ``gap``: ``H x W`` gap between the two highest logits (``regions.logit_gap``), for the gap rule's region.
    """
    if masks.ndim != 3 or masks.shape[0] != len(ratios) or masks.shape[-2:] != importance_logit.shape:
        raise ConfigError(
            f"Expected {len(ratios)} Top-K masks on the {tuple(importance_logit.shape)} grid, got {tuple(masks.shape)}."
        )
    h, w = pred_train.shape
    s = torch.sigmoid(importance_logit.float())
    regions = topk_regions(masks, (h, w))
    result = ImageHardness(
        name=name,
        size=(h, w),
        grid=(int(s.shape[0]), int(s.shape[1])),
        ratios=tuple(float(r) for r in ratios),
        importance_mean=float(s.mean()),
        importance_max=float(s.max()),
        region_pixels=regions.sum(dim=(1, 2)).to(torch.int64).numpy(),
    )
    if gt_ids is None:
        return result, None
    if gt_ids.shape != pred_train.shape:
        raise DataError(f"The ground truth of {name or 'the image'} is {tuple(gt_ids.shape)}, its prediction {(h, w)}.")
    maps = _count_errors(result, pred_train, gt_ids.to(torch.uint8), regions, band_width, curve_widths)
    counts = [int(k) for k in masks.flatten(1).sum(dim=1)]  # the selector's K per ratio
    result.ceiling = count_regions(densest_cells(maps.wrong, result.grid, counts), maps.evaluated, maps.wrong)
    result.band_cells = count_regions(densest_cells(maps.pred_band, result.grid, counts), maps.evaluated, maps.wrong)
    if gap is not None:
        result.gap = count_regions(gap_regions(gap, result.grid, counts), maps.evaluated, maps.wrong)
    return result, maps


def _count_errors(
    result: ImageHardness,
    pred_train: torch.Tensor,
    gt_ids: torch.Tensor,
    regions: torch.Tensor,
    band_width: float,
    curve_widths: Sequence[int],
) -> ImageMaps:
    """Fill ``result``'s counts that need ground truth: Top-K regions, bands, confusion."""
    h, w = result.size
    pred_ids = to_label_ids(pred_train, "prediction")
    valid = evaluated_mask(gt_ids)
    wrong = valid & (pred_ids != gt_ids)
    d = scale_width(band_width, h, w)
    widths = sorted({*curve_widths, d})
    distance = predicted_distance(pred_train)
    curve = band_curve(pred_train, valid, wrong, widths, distance)
    gt_band = boundary_band(gt_ids, d, valid)
    conf = confusion_matrix(pred_ids.to(torch.uint8), gt_ids).numpy().astype(np.int64)
    result.topk = count_regions(regions, valid, wrong)
    j = widths.index(d)
    result.band_width = d
    result.band = RegionCounts(curve.valid, curve.errors, curve.valid_inside[j : j + 1], curve.errors_inside[j : j + 1])
    keep = [widths.index(c) for c in curve_widths]
    result.curve = RegionCounts(curve.valid, curve.errors, curve.valid_inside[keep], curve.errors_inside[keep])
    result.curve_widths = tuple(int(c) for c in curve_widths)
    result.gt_band = count_regions(gt_band[None], valid, wrong)
    result.gt_band_in_regions = (regions & (gt_band & valid)).sum(dim=(1, 2)).to(torch.int64).numpy()
    result.confusion = conf
    result.miou = nanmean(list(class_iou(conf).values()))
    return ImageMaps(valid, wrong, gt_band, distance <= d - 1)
