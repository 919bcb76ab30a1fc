"""Figures (Pillow only, no CLI imports): class palettes, the importance colour map, overlays, panels and
the show-hardness figure. Tests and notebooks can call these directly."""

from .colors import apply_colormap, class_palette, inferno_lut, region_colors
from .hardness import (
    GroundTruthView,
    HardnessFigureData,
    hardness_panels,
    importance_overlay,
    render_hardness_figure,
    thumbnail,
)
from .layout import ColorBar, LegendItem, Panel, compose

__all__ = [
    "ColorBar",
    "GroundTruthView",
    "HardnessFigureData",
    "LegendItem",
    "Panel",
    "apply_colormap",
    "class_palette",
    "compose",
    "hardness_panels",
    "importance_overlay",
    "inferno_lut",
    "region_colors",
    "render_hardness_figure",
    "thumbnail",
]
