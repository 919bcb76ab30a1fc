"""Charts as SVG text, written by a few lines of code (no plotting dependency): the training curve, bars of
per-class scores and a confusion-matrix heat map. Every chart is a standalone ``<svg>`` element that works
inline in a page and as an ``.svg`` file, with no fonts, scripts or links from elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from .colors import inferno_lut

FONT = 'font-family="system-ui,-apple-system,Segoe UI,Roboto,sans-serif"'
LOSS_COLOR = "#c2410c"
MIOU_COLOR = "#1d4ed8"
AXIS = "#6b7280"
GRID = "#e5e7eb"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [low, high] (steps of 1, 2 or 5 times a power of ten)."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        high = low + 1.0
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 12))
    return ticks


def _fmt(value: float) -> str:
    return f"{value:g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}" {FONT} font-size="12">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def training_curve_svg(
    steps: Sequence[tuple[int, float]],
    validations: Sequence[tuple[int, float | None]],
    total_iters: int,
    width: int = 640,
    height: int = 300,
) -> str:
    """Training loss (left axis, orange) and validation mIoU in % (right axis, blue) against the iteration."""
    left, right, top, bottom = 56, 56, 30, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    x_max = max([total_iters, 1, *(i for i, _ in steps), *(i for i, _ in validations)])
    x_ticks = nice_ticks(0, x_max, 6)
    x_top = x_ticks[-1]
    losses = [v for _, v in steps if math.isfinite(v)]
    loss_ticks = nice_ticks(0, max(losses) if losses else 1.0, 5)
    mious = [100 * v for _, v in validations if v is not None]
    miou_ticks = nice_ticks(0, max(mious) if mious else 100.0, 5)

    def x(i: float) -> float:
        return left + plot_w * i / x_top

    def y(v: float, ticks: list[float]) -> float:
        return top + plot_h * (1 - v / ticks[-1])

    body = [f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>']
    for t in loss_ticks:
        yy = y(t, loss_ticks)
        body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="{GRID}"/>')
        body.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end" fill="{LOSS_COLOR}">{_fmt(t)}</text>')
    for t in miou_ticks:
        body.append(f'<text x="{left + plot_w + 6}" y="{y(t, miou_ticks) + 4:.1f}" fill="{MIOU_COLOR}">{_fmt(t)}</text>')
    for t in x_ticks:
        body.append(f'<text x="{x(t):.1f}" y="{top + plot_h + 16}" text-anchor="middle" fill="{AXIS}">{_fmt(t)}</text>')
    body.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="{AXIS}"/>')
    body.append(f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle" fill="{AXIS}">iteration</text>')
    body.append(f'<text x="{left}" y="{top - 10}" fill="{LOSS_COLOR}">training loss</text>')
    body.append(f'<text x="{left + plot_w}" y="{top - 10}" text-anchor="end" fill="{MIOU_COLOR}">val mIoU (%)</text>')
    loss_points = [(x(i), y(v, loss_ticks)) for i, v in steps if math.isfinite(v)]
    if loss_points:
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in loss_points)
        body.append(f'<polyline class="loss" points="{path}" fill="none" stroke="{LOSS_COLOR}" stroke-width="2"/>')
    miou_points = [(x(i), y(100 * v, miou_ticks)) for i, v in validations if v is not None]
    if miou_points:
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in miou_points)
        body.append(f'<polyline class="miou" points="{path}" fill="none" stroke="{MIOU_COLOR}" stroke-width="2"/>')
        body += [f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" fill="{MIOU_COLOR}"/>' for px, py in miou_points]
    if not loss_points and not miou_points:
        body.append(f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" text-anchor="middle" fill="{AXIS}">'
                    "no logged step yet</text>")
    return _svg(width, height, body, "training loss and validation mIoU against the iteration")


def bar_chart_svg(
    items: Sequence[tuple[str, float | None, tuple[int, int, int]]], title: str, width: int = 560, row: int = 20
) -> str:
    """Horizontal bars of shares in [0, 1] (shown in %), one per (label, value, swatch colour); None: no bar."""
    label_w, value_w, top = 150, 56, 8
    bar_w = width - label_w - value_w - 12
    height = top * 2 + row * max(len(items), 1)
    body = [f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>']
    for k, (label, value, color) in enumerate(items):
        y0 = top + k * row
        rgb = f"rgb({color[0]},{color[1]},{color[2]})"
        body.append(f'<rect x="4" y="{y0 + 4}" width="11" height="11" fill="{rgb}" stroke="#888"/>')
        body.append(f'<text x="20" y="{y0 + 14}">{escape(label[:22])}</text>')
        body.append(f'<rect x="{label_w}" y="{y0 + 3}" width="{bar_w}" height="{row - 6}" fill="#f3f4f6"/>')
        if value is None or not math.isfinite(value):
            text = "&#8211;"
        else:
            share = min(max(value, 0.0), 1.0)
            body.append(f'<rect class="bar" x="{label_w}" y="{y0 + 3}" width="{bar_w * share:.1f}" '
                        f'height="{row - 6}" fill="{rgb}" stroke="#555" stroke-width="0.5"/>')
            text = f"{100 * value:.1f}"
        body.append(f'<text x="{width - 6}" y="{y0 + 14}" text-anchor="end">{text}</text>')
    return _svg(width, height, body, title)


def heatmap_svg(
    counts: Sequence[Sequence[float]], row_labels: Sequence[str], col_labels: Sequence[str], title: str,
    cell: int = 18,
) -> str:
    """A confusion matrix as a heat map: each row normalised to its total (the share of the ground-truth
    class's pixels predicted as each column), inferno colours, the share in % as each cell's tooltip."""
    label_w = 8 + 7 * max((len(s) for s in row_labels), default=4)
    head_h = 8 + 6 * max((len(s) for s in col_labels), default=4)
    width, height = label_w + cell * len(col_labels) + 8, head_h + cell * len(row_labels) + 8
    lut = inferno_lut()
    body = [f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>']
    for j, label in enumerate(col_labels):
        cx = label_w + j * cell + cell / 2 + 4
        body.append(f'<text x="{cx:.1f}" y="{head_h - 4}" transform="rotate(-60 {cx:.1f} {head_h - 4})" '
                    f'font-size="11">{escape(label)}</text>')
    for i, (label, row) in enumerate(zip(row_labels, counts)):
        total = float(sum(row))
        y0 = head_h + i * cell
        body.append(f'<text x="{label_w - 4}" y="{y0 + cell - 5}" text-anchor="end" font-size="11">{escape(label)}</text>')
        for j, value in enumerate(row):
            share = value / total if total else 0.0
            r, g, b = (int(v) for v in lut[min(255, int(round(share * 255)))])
            tip = f"{label} predicted as {col_labels[j]}: {100 * share:.1f}%" if total else f"{label}: no pixels"
            body.append(f'<rect x="{label_w + j * cell}" y="{y0}" width="{cell}" height="{cell}" '
                        f'fill="rgb({r},{g},{b})"><title>{escape(tip)}</title></rect>')
    return _svg(width, height, body, title)
