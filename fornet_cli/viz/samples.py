"""Small pictures of one image for the report pages: the photo, the prediction and the ground truth in the
class colours, and the importance map with the Top-K region. Each panel is its own file (JPEG for photos and
heat maps, PNG for label colours, which must stay sharp), so a page lays them out with HTML captions."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..fsutil import atomic_path
from .colors import region_colors
from .hardness import importance_overlay
from .raster import outline, panel_size, resize_labels, resize_rgb, upsample_grid

IGNORED_COLOR = (0, 0, 0)  # pixels of the ignore index: not scored


@dataclass(frozen=True)
class SampleView:
    """What the panels of one image show: class indices with 255 = ignore (``truth`` may be absent)."""

    name: str
    image: np.ndarray  # H x W x 3 uint8
    prediction: np.ndarray  # H x W
    truth: np.ndarray | None = None
    importance: np.ndarray | None = None  # h x w in [0, 1] (FoR-Net models)
    region: np.ndarray | None = None  # h x w bool: the largest Top-K region


def colorize(classes: np.ndarray, palette: Sequence[Sequence[int]]) -> np.ndarray:
    """Class indices -> colours; 255 (ignore) and indices beyond the palette are black."""
    table = np.zeros((256, 3), dtype=np.uint8)
    colors = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)[:255]
    table[: len(colors)] = colors
    table[255] = IGNORED_COLOR
    return table[classes.astype(np.uint8)]


def safe_name(name: str) -> str:
    """A file name for an image name (path separators and odd characters replaced)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "image"


def _save(image: np.ndarray, target: Path, fmt: str) -> None:
    with atomic_path(target) as tmp:
        Image.fromarray(image).save(tmp, format=fmt, **({"quality": 88} if fmt == "JPEG" else {}))


def importance_panel(view: SampleView, size: tuple[int, int]) -> np.ndarray:
    """The importance map over the image, the largest Top-K region outlined in its colour."""
    assert view.importance is not None
    out = importance_overlay(view.image, view.importance, size)
    if view.region is not None:
        edge = outline(upsample_grid(view.region, size), 2)
        out = out.copy()
        out[edge] = region_colors(4)[-1]
    return out


def write_panels(view: SampleView, folder: Path, rel: str, palette: Sequence[Sequence[int]], width: int = 256) -> dict[str, str]:
    """Write the panels of ``view`` into ``folder`` (paths ``rel``/NAME_kind.ext); returns kind -> path
    relative to the page (``image``, ``prediction``, and ``truth`` / ``importance`` when present)."""
    size = panel_size(*view.image.shape[:2], width)
    stem = safe_name(view.name)
    panels: dict[str, tuple[np.ndarray, str]] = {
        "image": (resize_rgb(view.image, size), "JPEG"),
        "prediction": (colorize(resize_labels(view.prediction, size), palette), "PNG"),
    }
    if view.truth is not None:
        panels["truth"] = (colorize(resize_labels(view.truth, size), palette), "PNG")
    if view.importance is not None:
        panels["importance"] = (importance_panel(view, size), "JPEG")
    out = {}
    for kind, (pixels, fmt) in panels.items():
        name = f"{stem}_{kind}.{'jpg' if fmt == 'JPEG' else 'png'}"
        _save(np.ascontiguousarray(pixels), folder / name, fmt)
        out[kind] = f"{rel}/{name}"
    return out
