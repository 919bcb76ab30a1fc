"""Colours of the figures: the class palette, the importance colour map and the Top-K region colours."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..data.labels import TRAIN_ID_TO_COLOR

RGB = tuple[int, int, int]

# matplotlib's "inferno" sampled at 0, 1/8, ..., 1: perceptually uniform, readable in greyscale and by
# colour-blind viewers; dark = low importance, bright yellow = high.
_INFERNO_ANCHORS = (
    (0, 0, 4), (31, 12, 72), (85, 15, 109), (136, 34, 106), (186, 54, 85),
    (227, 89, 51), (249, 140, 10), (249, 201, 50), (252, 255, 164),
)  # fmt: skip

# Nested Top-K regions, smallest (most selective) first: cool hues, so they never read as the red/yellow
# of the error map or the green of the boundary band.
_REGION_ANCHORS = ((0, 255, 255), (0, 160, 255), (80, 90, 255), (190, 80, 255))

ERROR_INSIDE: RGB = (255, 40, 40)  # a wrong pixel inside the largest Top-K region
ERROR_OUTSIDE: RGB = (255, 230, 0)  # a wrong pixel the selector missed
BAND: RGB = (40, 220, 90)  # ground-truth boundary band
VOID: RGB = (0, 0, 0)
FOCUS_TILE: RGB = (255, 255, 255)  # outline of a tile focus inference re-ran at full resolution  # pixels the ground truth does not evaluate


def interpolate_anchors(anchors: Sequence[Sequence[int]], n: int) -> np.ndarray:
    """``n x 3`` uint8 colours spread evenly along the piecewise-linear path through ``anchors``."""
    a = np.asarray(anchors, dtype=np.float64)
    if n == 1:
        return a[:1].round().astype(np.uint8)
    pos = np.linspace(0, len(a) - 1, n)
    idx = np.minimum(pos.astype(int), len(a) - 2)
    t = (pos - idx)[:, None]
    return (a[idx] * (1 - t) + a[idx + 1] * t).round().astype(np.uint8)


def inferno_lut() -> np.ndarray:
    """256 x 3 uint8 lookup table of the importance colour map."""
    return interpolate_anchors(_INFERNO_ANCHORS, 256)


def apply_colormap(values: np.ndarray, lut: np.ndarray | None = None) -> np.ndarray:
    """Values in [0, 1] (any shape) -> colours (shape + (3,)), uint8."""
    lut = inferno_lut() if lut is None else lut
    index = np.clip(np.rint(np.nan_to_num(values) * (len(lut) - 1)), 0, len(lut) - 1).astype(np.intp)
    return lut[index]


def region_colors(n: int) -> np.ndarray:
    """``n x 3`` uint8 colours of nested regions, the smallest region first."""
    if n <= len(_REGION_ANCHORS):
        return np.asarray(_REGION_ANCHORS[:n], dtype=np.uint8).reshape(n, 3)
    return interpolate_anchors(_REGION_ANCHORS, n)


def class_palette(num_classes: int, palette: Sequence[Sequence[int]] | None = None) -> np.ndarray:
    """``num_classes x 3`` uint8: the given palette, the official Cityscapes one for 19 classes, else a
    fixed pseudo-random one (the same as ``fornet predict --format color``)."""
    if palette:
        return np.asarray(palette, dtype=np.uint8)
    if num_classes == 19:
        return TRAIN_ID_TO_COLOR[:19].copy()
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(num_classes, 3), dtype=np.uint8)
