"""The set-level view of show-hardness: the selector's Top-K regions against a band around the *predicted*
boundaries of the same area (see :mod:`fornet_cli.hardness.analysis` for the per-image counts).

The band is reported area-matched: for each Top-K ratio, at the coverage the selector spends. Coverage grows
in steps with the band width d, so the two nested bands around that coverage are mixed: all of the narrower
band plus a random share t of the ring between them. Its expected recall interpolates linearly between the
two bands, at exactly the selector's coverage; ``width`` reports ``d_lo + t (d_hi - d_lo)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..evaluation.metrics import class_iou, nanmean
from ..fmt import none_if_nan
from .analysis import DEFAULT_BAND_WIDTH, ImageHardness, RegionCounts, div, region_dict


@dataclass(frozen=True)
class MatchedBand:
    """The predicted-boundary band at a target coverage (see the module docstring)."""

    coverage: float
    error_recall: float
    width: float  # d_lo + t (d_hi - d_lo)
    width_low: int  # 0 = the empty band
    width_high: int
    mix: float  # t: the share of the ring between the two bands that is taken

    @property
    def lift(self) -> float:
        return div(self.error_recall, self.coverage)

    def to_dict(self) -> dict[str, Any]:
        return {
            "coverage": none_if_nan(self.coverage),
            "error_recall": none_if_nan(self.error_recall),
            "lift": none_if_nan(self.lift),
            "width_px": round(self.width, 3),
            "widths_mixed": [self.width_low, self.width_high],
            "mix": round(self.mix, 6),
        }


def area_matched(
    widths: Sequence[int], coverage: Sequence[float], recall: Sequence[float], target: float
) -> MatchedBand | None:
    """The band curve (coverage, recall at each width, non-decreasing) at coverage ``target``, by mixing the
    two bands around it; None when even the widest band covers less than ``target``."""
    if math.isnan(target):
        return None
    points = [(0, 0.0, 0.0), *zip(widths, coverage, recall)]  # width 0: the empty band
    for (d0, c0, r0), (d1, c1, r1) in zip(points, points[1:]):
        if c1 >= target:
            if c1 <= c0:  # target 0 at the empty band
                return MatchedBand(c0, r0, float(d0), d0, d0, 0.0)
            t = max(0.0, (target - c0) / (c1 - c0))
            return MatchedBand(target, r0 + t * (r1 - r0), d0 + t * (d1 - d0), d0, d1, t)
    return None


@dataclass(frozen=True)
class HardnessSummary:
    """Set-level numbers: the selector vs the boundary-band baseline (see the module docstring)."""

    ratios: tuple[float, ...]
    images: int
    images_with_gt: int
    band_width: float  # at 1024 x 2048
    band_widths_px: dict[str, int]  # "HxW" -> the fixed band's width in pixels at that size
    hardness: float  # mean over images of the mean importance S
    area: tuple[float, ...]  # per ratio: share of all images' pixels inside the Top-K regions
    selector: RegionCounts | None
    band: RegionCounts | None
    gt_band: RegionCounts | None
    curve: RegionCounts | None
    curve_widths: tuple[int, ...]
    matched: tuple[MatchedBand | None, ...]
    miou: float
    gt_band_inside: tuple[float, ...]
    ceiling: RegionCounts | None = None  # the cells holding the most errors, as many as the selector's
    gap: RegionCounts | None = None  # the least sure cells by the logit gap (images that had logits)
    band_cells: RegionCounts | None = None  # the cells holding the most pixels of the fixed predicted band

    def to_dict(self) -> dict[str, Any]:
        sel, band = self.selector, self.band
        rows = []
        for i, r in enumerate(self.ratios):
            row: dict[str, Any] = {"ratio": r, "area": none_if_nan(self.area[i])}
            if sel is not None:
                m = self.matched[i]
                row.update(
                    coverage=none_if_nan(sel.coverage[i]),
                    error_recall=none_if_nan(sel.error_recall[i]),
                    lift=none_if_nan(sel.lift[i]),
                    gt_band_inside=none_if_nan(self.gt_band_inside[i]),
                    band_area_matched=None if m is None else m.to_dict(),
                    recall_minus_band=None if m is None else none_if_nan(sel.error_recall[i] - m.error_recall),
                    gap_error_recall=None if self.gap is None else none_if_nan(self.gap.error_recall[i]),
                    band_cells_error_recall=None if self.band_cells is None else none_if_nan(
                        self.band_cells.error_recall[i]),
                    ceiling_error_recall=None if self.ceiling is None else none_if_nan(self.ceiling.error_recall[i]),
                    share_of_ceiling=None if self.ceiling is None else none_if_nan(
                        div(sel.error_recall[i], self.ceiling.error_recall[i])),
                )
            rows.append(row)
        out: dict[str, Any] = {
            "images": self.images,
            "images_with_ground_truth": self.images_with_gt,
            "hardness": none_if_nan(self.hardness),
            "miou": none_if_nan(self.miou),
            "error_rate": None if sel is None else none_if_nan(sel.error_rate),
            "selector": rows,
            "band_fixed": None,
            "gt_band": None,
            "band_curve": [],
        }
        if band is not None and self.gt_band is not None and self.curve is not None:
            out["band_fixed"] = region_dict(
                band, 0, width_px_at_1024x2048=self.band_width, width_px=self.band_widths_px
            )
            out["gt_band"] = region_dict(self.gt_band, 0, width_px=self.band_widths_px)
            c = self.curve
            out["band_curve"] = [
                {"width_px": d, "coverage": none_if_nan(c.coverage[j]), "error_recall": none_if_nan(c.error_recall[j])}
                for j, d in enumerate(self.curve_widths)
            ]
        return out


def summarize(
    images: Sequence[ImageHardness], ratios: Sequence[float], band_width: float = DEFAULT_BAND_WIDTH
) -> HardnessSummary:
    """Sum the images' counts (those with ground truth for everything about errors)."""
    n = len(ratios)
    if any(im.ratios != tuple(float(r) for r in ratios) for im in images):
        raise ConfigError(f"Every image must be analysed with the Top-K ratios {tuple(ratios)}.")
    labelled = [im for im in images if im.has_gt]
    curve_widths = labelled[0].curve_widths if labelled else ()
    if any(im.curve_widths != curve_widths for im in labelled):
        raise ConfigError("Every image must be analysed with the same band widths (curve_widths) to be summed.")
    pixels = sum(im.size[0] * im.size[1] for im in images)
    area = tuple(div(v, pixels) for v in sum(im.region_pixels for im in images))
    selector = band = gt_band = curve = None
    matched: tuple[MatchedBand | None, ...] = (None,) * n
    miou = float("nan")
    gt_inside: tuple[float, ...] = (float("nan"),) * n
    widths_px: dict[str, int] = {}
    ceiling = gap = band_cells = None
    if labelled:
        ceiling = _sum([im.ceiling for im in labelled], n)
        gap = _sum([im.gap for im in labelled], n)
        band_cells = _sum([im.band_cells for im in labelled], n)
        selector = sum((im.topk for im in labelled), RegionCounts.zeros(n))  # type: ignore[misc]
        band = sum((im.band for im in labelled), RegionCounts.zeros(1))  # type: ignore[misc]
        gt_band = sum((im.gt_band for im in labelled), RegionCounts.zeros(1))  # type: ignore[misc]
        curve = sum((im.curve for im in labelled), RegionCounts.zeros(len(curve_widths)))  # type: ignore[misc]
        matched = tuple(
            area_matched(curve_widths, curve.coverage, curve.error_recall, c) for c in selector.coverage
        )
        conf = sum(im.confusion for im in labelled)  # type: ignore[misc]
        miou = nanmean(list(class_iou(conf).values()))
        in_regions = sum(im.gt_band_in_regions for im in labelled)
        gt_inside = tuple(div(v, gt_band.valid_inside[0]) for v in in_regions)  # type: ignore[union-attr]
        widths_px = {f"{im.size[0]}x{im.size[1]}": im.band_width for im in labelled}
    return HardnessSummary(
        ratios=tuple(float(r) for r in ratios),
        images=len(images),
        images_with_gt=len(labelled),
        band_width=float(band_width),
        band_widths_px=widths_px,
        hardness=div(sum(im.importance_mean for im in images), len(images)),
        area=area,
        selector=selector,
        band=band,
        gt_band=gt_band,
        curve=curve,
        curve_widths=tuple(curve_widths),
        matched=matched,
        miou=miou,
        gt_band_inside=gt_inside,
        ceiling=ceiling,
        gap=gap,
        band_cells=band_cells,
    )


def _sum(counts: list[RegionCounts | None], n: int) -> RegionCounts | None:
    """The sum over images, or None unless every image has these counts."""
    if not counts or any(c is None for c in counts):
        return None
    return sum(counts, RegionCounts.zeros(n))  # type: ignore[arg-type]
