"""Panels and their arrangement: a title bar above each picture, a legend (swatches, notes, colour bar)
below it, panels in a grid under a figure header. Text uses Pillow's built-in font (no font files)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .colors import RGB

BACKGROUND: RGB = (255, 255, 255)
TITLE_BAR: RGB = (232, 234, 238)
TEXT: RGB = (20, 20, 24)
MUTED: RGB = (90, 90, 100)
GAP = 10  # pixels between panels and around the figure


@dataclass(frozen=True)
class LegendItem:
    """A swatch and its text. ``hollow``: the swatch is an outline (for drawn borders, not fills)."""

    text: str
    color: RGB
    hollow: bool = False


@dataclass(frozen=True)
class ColorBar:
    """A horizontal colour bar: ``lut`` (N x 3 uint8) from ``low`` to ``high``, with a caption."""

    lut: np.ndarray
    caption: str
    ticks: tuple[tuple[float, str], ...] = ((0.0, "0"), (0.5, "0.5"), (1.0, "1"))


@dataclass
class Panel:
    """One picture of a figure with its title, legend items, notes (lines of text) and colour bar."""

    title: str
    image: np.ndarray  # H x W x 3 uint8
    legend: list[LegendItem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    colorbar: ColorBar | None = None


@lru_cache(maxsize=16)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's built-in font at ``size`` pixels (scalable since Pillow 10.1)."""
    return ImageFont.load_default(size=size)


@dataclass(frozen=True)
class Style:
    """Text sizes, scaled with the panel width (512 px panels: 15 px titles, 13 px legends)."""

    panel_width: int

    @property
    def title_size(self) -> int:
        return max(10, round(self.panel_width * 0.030))

    @property
    def body_size(self) -> int:
        return max(9, round(self.panel_width * 0.025))

    @property
    def header_size(self) -> int:
        return max(11, round(self.panel_width * 0.034))

    @property
    def line(self) -> int:
        return self.body_size + 5

    @property
    def pad(self) -> int:
        return max(4, self.panel_width // 64)


def _wrap(text: str, width: float, f: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> list[str]:
    """Greedy word wrap to ``width`` pixels."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        trial = f"{current} {word}" if current else word
        if current and f.getlength(trial) > width:
            lines.append(current)
            current = word
        else:
            current = trial
    return [*lines, current] if current else lines


def _legend_rows(items: Sequence[LegendItem], width: float, style: Style) -> list[list[tuple[LegendItem, float]]]:
    """Legend items flowed into rows that fit ``width``; each item with its x offset."""
    f = font(style.body_size)
    swatch = style.body_size
    rows: list[list[tuple[LegendItem, float]]] = [[]]
    x = 0.0
    for item in items:
        w = swatch + 5 + f.getlength(item.text)
        if rows[-1] and x + w > width:
            rows.append([])
            x = 0.0
        rows[-1].append((item, x))
        x += w + 2 * style.pad
    return [r for r in rows if r]


def _footer_height(panel: Panel, width: int, style: Style) -> int:
    inner = width - 2 * style.pad
    h = style.pad
    if panel.colorbar is not None:
        h += style.body_size + style.line + style.pad  # bar, then its tick labels
    h += len(_legend_rows(panel.legend, inner, style)) * style.line
    f = font(style.body_size)
    h += sum(len(_wrap(n, inner, f)) for n in panel.notes) * style.line
    return h + style.pad


def _draw_footer(canvas: Image.Image, panel: Panel, x0: int, y0: int, width: int, style: Style) -> None:
    draw = ImageDraw.Draw(canvas)
    f = font(style.body_size)
    pad = style.pad
    inner = width - 2 * pad
    y = y0 + pad
    if panel.colorbar is not None:
        y = _draw_colorbar(canvas, panel.colorbar, x0 + pad, y, inner, style)
    sw = style.body_size
    for row in _legend_rows(panel.legend, inner, style):
        for item, dx in row:
            x = x0 + pad + dx
            box = (x, y + 2, x + sw - 1, y + 1 + sw)
            if item.hollow:
                draw.rectangle(box, outline=item.color, width=max(2, sw // 5))
            else:
                draw.rectangle(box, fill=item.color, outline=MUTED)
            draw.text((x + sw + 5, y), item.text, font=f, fill=TEXT)
        y += style.line
    for note in panel.notes:
        for line in _wrap(note, inner, f):
            draw.text((x0 + pad, y), line, font=f, fill=MUTED)
            y += style.line


def _draw_colorbar(canvas: Image.Image, bar: ColorBar, x0: int, y0: int, width: int, style: Style) -> int:
    """Draws the bar (55 % of the width, caption to its right); returns the y below its tick labels."""
    draw = ImageDraw.Draw(canvas)
    f = font(style.body_size)
    length = int(width * 0.55)
    height = style.body_size
    lut = np.asarray(bar.lut, dtype=np.uint8)
    index = np.linspace(0, len(lut) - 1, length).round().astype(np.intp)
    strip = np.repeat(lut[index][None], height, axis=0)
    canvas.paste(Image.fromarray(strip), (x0, y0))
    draw.rectangle((x0, y0, x0 + length - 1, y0 + height - 1), outline=MUTED)
    for value, label in bar.ticks:
        x = x0 + value * (length - 1)
        draw.line((x, y0 + height, x, y0 + height + 3), fill=MUTED)
        tw = f.getlength(label)
        draw.text((min(max(x - tw / 2, x0), x0 + length - tw), y0 + height + 3), label, font=f, fill=TEXT)
    draw.text((x0 + length + 2 * style.pad, y0), bar.caption, font=f, fill=TEXT)
    return y0 + height + style.line + style.pad


def compose(panels: Sequence[Panel], columns: int, header: Sequence[str] = (), panel_width: int = 512) -> Image.Image:
    """Arrange ``panels`` (all ``panel_width`` wide) in rows of ``columns`` under ``header`` lines."""
    style = Style(panel_width)
    rows = [list(panels[i : i + columns]) for i in range(0, len(panels), columns)]
    title_h = style.title_size + 2 * style.pad
    hf = font(style.header_size)
    header_lines = [ln for text in header for ln in _wrap(text, columns * panel_width, hf)]
    header_h = len(header_lines) * (style.header_size + 6) + (GAP if header_lines else 0)
    row_heights = [
        title_h + max(p.image.shape[0] for p in row) + max(_footer_height(p, panel_width, style) for p in row)
        for row in rows
    ]
    width = columns * panel_width + (columns + 1) * GAP
    height = GAP + header_h + sum(row_heights) + len(rows) * GAP
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    y = GAP
    for line in header_lines:
        draw.text((GAP, y), line, font=hf, fill=TEXT)
        y += style.header_size + 6
    y += GAP if header_lines else 0
    tf = font(style.title_size)
    for row, row_h in zip(rows, row_heights):
        for j, panel in enumerate(row):
            x = GAP + j * (panel_width + GAP)
            draw.rectangle((x, y, x + panel_width - 1, y + title_h - 1), fill=TITLE_BAR)
            title = panel.title
            while tf.getlength(title) > panel_width - 2 * style.pad and len(title) > 4:
                title = title[:-4] + "..."  # never spill into the next panel
            draw.text((x + style.pad, y + style.pad), title, font=tf, fill=TEXT)
            canvas.paste(Image.fromarray(panel.image), (x, y + title_h))
            _draw_footer(canvas, panel, x, y + title_h + panel.image.shape[0], panel_width, style)
        y += row_h + GAP
    return canvas
