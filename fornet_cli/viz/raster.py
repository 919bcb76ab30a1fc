"""Pixel operations of the figures (numpy, Pillow and OpenCV): resizing image, label and mask maps to a panel,
grid maps upsampled without smoothing, blending, outlines and grid lines."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

Size = tuple[int, int]  # (height, width)


def panel_size(height: int, width: int, panel_width: int) -> Size:
    """The ``(height, width)`` of a panel ``panel_width`` pixels wide showing a ``height x width`` image."""
    return max(1, round(height * panel_width / width)), panel_width


def resize_rgb(image: np.ndarray, size: Size) -> np.ndarray:
    """An ``H x W x 3`` uint8 photo resized smoothly (area-averaged when shrinking)."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    im = Image.fromarray(np.ascontiguousarray(image))
    # reducing_gap: shrink by an integer factor first (fast), then resample the rest properly
    return np.asarray(im.resize((w, h), Image.Resampling.BILINEAR, reducing_gap=2.0))


def resize_labels(labels: np.ndarray, size: Size) -> np.ndarray:
    """Class indices (or any integer map) resized by nearest neighbour: no invented classes."""
    h, w = size
    rows = (np.arange(h) * labels.shape[0] // h).astype(np.intp)
    cols = (np.arange(w) * labels.shape[1] // w).astype(np.intp)
    return labels[rows[:, None], cols[None, :]]


def resize_fraction(mask: np.ndarray, size: Size) -> np.ndarray:
    """A boolean map resized to the share of each panel pixel it covers (float32 in [0, 1]), so that
    one-pixel errors stay visible, faintly, when a large image shrinks."""
    h, w = size
    if mask.shape == (h, w):
        return mask.astype(np.float32)
    im = Image.fromarray(mask.astype(np.float32), mode="F")
    return np.asarray(im.resize((w, h), Image.Resampling.BOX), dtype=np.float32)


def upsample_grid(grid: np.ndarray, size: Size) -> np.ndarray:
    """A ``h x w`` map of feature-grid cells -> ``size``, nearest neighbour: every cell stays a visible
    block. The cell of output pixel (y, x) is ``(floor(y h / H), floor(x w / W))``, as in
    ``F.interpolate(mode="nearest")``, which the scores use to map masks to pixels."""
    return resize_labels(grid, size)


def grey(image: np.ndarray, brightness: float = 1.0, offset: float = 0.0) -> np.ndarray:
    """Luminance of an RGB image as float32 ``H x W x 3`` (scaled, plus an offset), for dimmed backdrops."""
    y = image[..., 0] * 0.299 + image[..., 1] * 0.587 + image[..., 2] * 0.114
    y = y.astype(np.float32) * brightness + offset
    return np.repeat(y[..., None], 3, axis=2)


def blend(base: np.ndarray, color: np.ndarray, alpha: np.ndarray | float) -> np.ndarray:
    """``base * (1 - alpha) + color * alpha`` as float32; ``color`` is one RGB triple or a map, ``alpha``
    a number or an ``H x W`` map."""
    base = base.astype(np.float32, copy=False)
    color = np.asarray(color, dtype=np.float32)
    if isinstance(alpha, np.ndarray):
        alpha = alpha.astype(np.float32, copy=False)[..., None]
    return base + (color - base) * alpha


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def erode(mask: np.ndarray, radius: int) -> np.ndarray:
    """Square erosion; outside the image counts as inside the mask (regions reaching the border are not
    outlined along it)."""
    if radius <= 0:
        return mask.copy()
    # cv2.erode's default border value is the type's maximum: outside counts as inside the mask
    square = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.erode(np.ascontiguousarray(mask, dtype=bool).view(np.uint8), square).view(bool)


def outline(mask: np.ndarray, thickness: int = 2) -> np.ndarray:
    """The inner border of a boolean region, ``thickness`` pixels wide."""
    return mask & ~erode(mask, thickness)


def grid_lines(size: Size, grid: Size, min_cell: float = 8.0) -> np.ndarray | None:
    """Boolean map of the feature-grid cell borders at ``size``, or None when cells are smaller than
    ``min_cell`` pixels (lines would hide the picture; the blocks of the nearest upsampling still show)."""
    h, w = size
    gh, gw = grid
    if h / gh < min_cell or w / gw < min_cell:
        return None
    lines = np.zeros((h, w), dtype=bool)
    # the first output pixel of each cell, as in upsample_grid
    rows = np.flatnonzero(np.diff(np.arange(h) * gh // h)) + 1
    cols = np.flatnonzero(np.diff(np.arange(w) * gw // w)) + 1
    lines[rows, :] = True
    lines[:, cols] = True
    return lines


def compact(image: Image.Image) -> Image.Image:
    """256 colours with Floyd-Steinberg dithering: figure PNGs about 3x smaller, and faster to encode, with
    no visible change (a palette without dithering would band the colour bar and the heat map)."""
    palette = image.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    return image.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)
