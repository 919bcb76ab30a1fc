"""The show-hardness figure: where a FoR-Net model focuses, and whether that is where it errs.

Panels (3 columns with ground truth, 2 without):

    image            | importance S over the image | Top-K regions (nested)
    prediction       | errors vs Top-K regions     | ground-truth boundary band vs Top-K regions

The importance map and the Top-K masks live on the feature grid; they are upsampled by nearest neighbour
(every cell stays a block; faint cell borders where cells are large enough), and the titles give the grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from ..fmt import pct as fmt_pct
from . import colors
from .layout import ColorBar, LegendItem, Panel, compose
from .raster import (
    blend,
    grey,
    grid_lines,
    outline,
    panel_size,
    resize_fraction,
    resize_labels,
    resize_rgb,
    to_uint8,
    upsample_grid,
)


@dataclass(frozen=True)
class GroundTruthView:
    """What the figure shows of the ground truth: full-resolution ``H x W`` boolean maps and numbers."""

    evaluated: np.ndarray  # pixels the ground truth evaluates (not void / ignoreInEval)
    wrong: np.ndarray  # evaluated pixels predicted wrongly
    band: np.ndarray  # pixels within band_width of a ground-truth boundary
    band_width: int  # pixels
    miou: float
    error_rate: float  # wrong / evaluated
    error_recall: Sequence[float]  # per Top-K ratio: share of the wrong pixels inside the region
    band_share: float  # share of evaluated pixels in the band
    band_inside: Sequence[float]  # per Top-K ratio: share of the band's evaluated pixels inside the region


@dataclass(frozen=True)
class FocusView:
    """Focus inference on the same image: its prediction, the tiles it re-ran at full resolution (``y1, y2,
    x1, x2`` pixel boxes), the budget, what ranked the tiles and the share of pixels where the prediction
    equals the full-resolution one."""

    prediction: np.ndarray  # H x W class indices
    tiles: Sequence[tuple[int, int, int, int]]
    budget: float
    ranking: str
    agreement: float

    @classmethod
    def of(cls, run: Any, full_prediction: np.ndarray, budget: float) -> FocusView:
        """From a ``FocusResult`` of one image and the full-resolution prediction it is compared with."""
        pred = run.logits[0].argmax(dim=0).cpu().numpy()
        return cls(pred, run.refined[0], budget, run.ranking, float((pred == full_prediction).mean()))

    def to_dict(self) -> dict[str, Any]:
        return {"budget": self.budget, "ranking": self.ranking, "agreement": round(self.agreement, 6),
                "tiles": [list(t) for t in self.tiles]}


@dataclass(frozen=True)
class HardnessFigureData:
    """Everything one figure shows. Maps are at the image's resolution except the grid maps."""

    image: np.ndarray  # H x W x 3 uint8
    importance: np.ndarray  # h x w, S = sigmoid(z) in [0, 1]
    masks: np.ndarray  # n x h x w bool, the Top-K regions at the grid
    ratios: Sequence[float]
    coverage: Sequence[float]  # per ratio: share of the image's pixels inside the region
    prediction: np.ndarray  # H x W class indices
    palette: np.ndarray  # num_classes x 3 uint8
    class_names: Sequence[str]
    stride: int
    header: Sequence[str] = ()
    image_notes: Sequence[str] = ()  # under the image: e.g. where its ground truth came from
    ground_truth: GroundTruthView | None = None
    focus: FocusView | None = None


def pct(value: float, digits: int = 0) -> str:
    """A share as a percentage for labels; '-' when undefined."""
    return fmt_pct(value, digits, suffix="%")


def ratio_label(ratio: float) -> str:
    return f"Top {100 * ratio:g}%"


def render_hardness_figure(data: HardnessFigureData, panel_width: int = 512) -> Image.Image:
    """The figure as a Pillow RGB image (panels ``panel_width`` pixels wide)."""
    panels = hardness_panels(data, panel_width)
    return compose(panels, 3 if data.ground_truth is not None else 2, data.header, panel_width)


@dataclass(frozen=True)
class _Layout:
    """What every panel of one figure shares: its size, the dimmed photo and the Top-K regions."""

    size: tuple[int, int]
    backdrop: np.ndarray  # dimmed luminance under colour overlays
    order: np.ndarray  # ratio indices, smallest region first
    ratios: list[float]  # in that order
    regions: list[np.ndarray]  # the Top-K regions at panel size, in that order
    region_rgb: np.ndarray
    outlines: tuple[np.ndarray, np.ndarray]  # every region's outline
    outer: tuple[np.ndarray, np.ndarray]  # only the largest region's (over errors and bands)


def _layout(data: HardnessFigureData, photo: np.ndarray, size: tuple[int, int]) -> _Layout:
    order = np.argsort(np.asarray(data.ratios), kind="stable")
    regions = [upsample_grid(data.masks[i], size) for i in order]
    region_rgb = colors.region_colors(len(regions))
    return _Layout(
        size=size, backdrop=grey(photo, 0.55, 30), order=order, ratios=[float(data.ratios[i]) for i in order],
        regions=regions, region_rgb=region_rgb, outlines=_outline_layer(regions, region_rgb),
        # all four outlines would hide what they surround
        outer=_outline_layer(regions[-1:], region_rgb[-1:]),
    )


def hardness_panels(data: HardnessFigureData, panel_width: int = 512) -> list[Panel]:
    """The figure's panels, in reading order (4 without ground truth, 6 with; one more with focus inference)."""
    size = panel_size(*data.image.shape[:2], panel_width)
    photo = resize_rgb(data.image, size)
    layout = _layout(data, photo, size)
    panels = [
        Panel(f"image, {data.image.shape[0]}x{data.image.shape[1]} px", photo, notes=list(data.image_notes)),
        _importance_panel(data, photo, size),
        _regions_panel(data, layout),
        _prediction_panel(data, photo, size),
    ]
    gt = data.ground_truth
    if gt is not None:
        panels.append(_errors_panel(gt, layout))
        panels.append(_band_panel(gt, layout))
    if data.focus is not None:
        panels.append(_focus_panel(data, data.focus, photo, size))
    return panels


def importance_overlay(image: np.ndarray, importance: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The importance heat map (nearest upsampled, faint cell borders) over the image's luminance."""
    photo = resize_rgb(image, size)
    heat = colors.apply_colormap(upsample_grid(importance, size))
    out = blend(grey(photo), heat, 0.65)
    lines = grid_lines(size, importance.shape)
    if lines is not None:
        out = blend(out, (255, 255, 255), lines * 0.18)
    return to_uint8(out)


def thumbnail(data: HardnessFigureData, width: int = 256) -> Image.Image:
    """A small importance overlay for galleries."""
    size = panel_size(*data.image.shape[:2], width)
    return Image.fromarray(importance_overlay(data.image, data.importance, size))


# --------------------------------------------------------------------------------------------------------
# Panels
# --------------------------------------------------------------------------------------------------------


def _importance_panel(data: HardnessFigureData, photo: np.ndarray, size: tuple[int, int]) -> Panel:
    s = data.importance
    h, w = s.shape
    return Panel(
        f"importance S, grid {h}x{w} (stride {data.stride})",
        importance_overlay(data.image, s, size),
        notes=[
            f"S = sigmoid(z) per grid cell, shown as blocks (nearest upsampling); "
            f"min {s.min():.2f}, mean {s.mean():.2f}, max {s.max():.2f}"
        ],
        colorbar=ColorBar(colors.inferno_lut(), "importance S"),
    )


def _regions_panel(data: HardnessFigureData, lay: _Layout) -> Panel:
    regions, ratios, region_rgb, order = lay.regions, lay.ratios, lay.region_rgb, lay.order
    out = lay.backdrop
    # outermost first, so each pixel ends with the colour of the smallest region holding it
    for region, rgb in reversed(list(zip(regions, region_rgb))):
        out = blend(out, rgb, region * 0.5)
    out = _paint_outlines(out, lay.outlines)
    cells = data.masks.shape[1] * data.masks.shape[2]
    legend = [
        LegendItem(f"{ratio_label(r)} ({int(data.masks[i].sum())} of {cells} cells)", tuple(rgb))
        for r, i, rgb in zip(ratios, order, region_rgb)
    ]
    covered = ", ".join(pct(data.coverage[i]) for i in order)
    return Panel(
        f"Top-K regions of the {len(ratios)} branches (nested)",
        to_uint8(out),
        legend=legend,
        notes=[f"highest-S cells; the branches refine only these. Pixels covered: {covered}"],
    )


def _prediction_panel(data: HardnessFigureData, photo: np.ndarray, size: tuple[int, int]) -> Panel:
    pred = resize_labels(data.prediction, size)
    colored = data.palette[pred]
    out = blend(photo, colored, 0.8)
    counts = np.bincount(data.prediction.ravel(), minlength=len(data.palette))
    top = [int(c) for c in np.argsort(-counts, kind="stable")[:8] if counts[c] > 0]
    legend = [LegendItem(_name(data.class_names, c), tuple(int(v) for v in data.palette[c])) for c in top]
    rest = int(np.count_nonzero(counts)) - len(top)
    notes = [f"and {rest} more classes"] if rest > 0 else []
    return Panel("prediction (class palette)", to_uint8(out), legend=legend, notes=notes)


def _focus_panel(data: HardnessFigureData, focus: FocusView, photo: np.ndarray, size: tuple[int, int]) -> Panel:
    """Focus inference's prediction; the tiles it re-ran at full resolution bright and outlined, the rest dimmed."""
    h, w = data.image.shape[:2]
    refined = np.zeros((h, w), dtype=bool)
    for y1, y2, x1, x2 in focus.tiles:
        refined[y1:y2, x1:x2] = True
    inside = resize_fraction(refined, size)
    colored = blend(photo, data.palette[resize_labels(focus.prediction, size)], 0.8)
    out = blend(colored, grey(photo, 0.45, 20), (1.0 - inside) * 0.6)
    ring = outline(inside > 0.5, 2)
    out = blend(out, colors.FOCUS_TILE, ring.astype(np.float32))
    share = refined.mean()
    return Panel(
        f"focus inference: {len(focus.tiles)} tiles re-run at full resolution ({pct(share)} of the image)",
        to_uint8(out),
        legend=[LegendItem("re-run at full resolution", colors.FOCUS_TILE)],
        notes=[f"--focus {focus.budget:g}, tiles ranked by {focus.ranking}; the rest from the reduced-scale pass "
               f"(dimmed). Same class as full resolution on {100 * focus.agreement:.2f} % of pixels"],
    )


def _errors_panel(gt: GroundTruthView, lay: _Layout) -> Panel:
    size, ratios, region_rgb, order = lay.size, lay.ratios, lay.region_rgb, lay.order
    void = 1.0 - resize_fraction(gt.evaluated, size)
    out = blend(lay.backdrop, colors.VOID, void * 0.6)
    # a shrunk one-pixel error still shows: twice its share of the panel pixel, capped at opaque
    wrong = np.minimum(resize_fraction(gt.wrong, size) * 2.0, 1.0)
    outer = lay.regions[-1]
    out = blend(out, colors.ERROR_INSIDE, wrong * outer)
    out = blend(out, colors.ERROR_OUTSIDE, wrong * ~outer)
    out = _paint_outlines(out, lay.outer)
    recall = ", ".join(f"{ratio_label(r)}: {pct(gt.error_recall[i])}" for r, i in zip(ratios, order))
    return Panel(
        f"errors vs Top-K regions (mIoU {pct(gt.miou, 1)})",
        to_uint8(out),
        legend=[
            LegendItem(f"wrong, inside {ratio_label(ratios[-1])}", colors.ERROR_INSIDE),
            LegendItem("wrong, outside", colors.ERROR_OUTSIDE),
            LegendItem("void", colors.VOID),
            LegendItem(f"{ratio_label(ratios[-1])} region", tuple(region_rgb[-1]), hollow=True),
        ],
        notes=[f"{pct(gt.error_rate, 1)} of pixels wrong. Share of errors inside {recall}"],
    )


def _band_panel(gt: GroundTruthView, lay: _Layout) -> Panel:
    ratios, region_rgb, order = lay.ratios, lay.region_rgb, lay.order
    band = np.minimum(resize_fraction(gt.band, lay.size) * 1.5, 1.0)
    out = blend(lay.backdrop, colors.BAND, band * 0.75)
    out = _paint_outlines(out, lay.outer)
    inside = ", ".join(f"{ratio_label(r)}: {pct(gt.band_inside[i])}" for r, i in zip(ratios, order))
    return Panel(
        f"ground-truth boundary band (d = {gt.band_width} px) vs Top-K regions",
        to_uint8(out),
        legend=[
            LegendItem(f"within {gt.band_width} px of a boundary ({pct(gt.band_share)} of pixels)", colors.BAND),
            LegendItem(f"{ratio_label(ratios[-1])} region", tuple(region_rgb[-1]), hollow=True),
        ],
        notes=[f"Share of the band inside {inside}"],
    )


# --------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------


def _outline_layer(regions: list[np.ndarray], region_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index map of the outline drawn at each pixel, -1 = none; the colours), smallest region on top."""
    index = np.full(regions[0].shape, -1, dtype=np.int16)
    for i in reversed(range(len(regions))):
        index[outline(regions[i], 2)] = i
    return index, region_rgb


def _paint_outlines(image: np.ndarray, layer: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    index, rgb = layer
    out = image.copy()
    drawn = index >= 0
    out[drawn] = rgb[index[drawn]]
    return out


def _name(names: Sequence[str], index: int) -> str:
    return names[index] if 0 <= index < len(names) else f"class {index}"
