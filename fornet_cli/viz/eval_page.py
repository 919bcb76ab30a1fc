"""The page ``fornet eval --report DIR`` writes: the headline scores, per-class IoU as bars, the confusion
matrix as a heat map, the hard-region scores and the worst images with their pictures.

It renders the evaluation's JSON document (``EvaluationResult.to_dict()``, also saved beside it as
metrics.json), so the page and the numbers cannot disagree. Self-contained: inline CSS and SVG, relative links,
no scripts; it opens from ``file://``.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from ..fmt import pct
from .charts import bar_chart_svg, heatmap_svg

PAGE_CSS = (
    "body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;max-width:72em;margin:1.5em auto;"
    "padding:0 1em;color:#18181b}h1{font-size:1.45em;margin:0 0 .3em}h2{font-size:1.12em;margin:1.6em 0 .4em}"
    "table{border-collapse:collapse;margin:.4em 0 1em}td,th{border-bottom:1px solid #e2e2e8;padding:.25em .6em;"
    "text-align:right;vertical-align:middle}th{background:#eef0f4}td.name,th.name{text-align:left}"
    ".muted{color:#5b5b66}.big{font-size:1.25em}img{display:block;border:1px solid #ccc}"
    ".samples td{padding:.2em .3em}.samples th{font-weight:600}figure{margin:0}"
)


def _pct(value: Any, digits: int = 1) -> str:
    return pct(value, digits, missing="&ndash;")


def class_bars(class_iou: dict[str, Any], palette: Sequence[Sequence[int]], title: str) -> str:
    """Per-class IoU as an SVG bar chart, in class order, each bar in its class colour."""
    items = []
    for k, (name, value) in enumerate(class_iou.items()):
        color = tuple(int(v) for v in palette[k]) if k < len(palette) else (150, 150, 150)
        items.append((name, value, color))
    return bar_chart_svg(items, title)  # type: ignore[arg-type]


def samples_table(rows: Sequence[dict[str, Any]], kinds: Sequence[tuple[str, str]], width: int = 256) -> str:
    """A table of images: name and score, then one picture per (kind, caption) in ``kinds``, ``width`` px wide."""
    heads = "".join(f"<th>{escape(caption)}</th>" for _, caption in kinds)
    body = []
    for row in rows:
        cells = "".join(
            f'<td><img src="{escape(row["panels"][kind])}" alt="{escape(caption)} of {escape(row["name"])}" '
            f'width="{width}"></td>' if kind in row["panels"] else "<td>&ndash;</td>"
            for kind, caption in kinds
        )
        score = f'<br><span class=muted>mIoU {_pct(row.get("miou"))}&nbsp;%</span>' if "miou" in row else ""
        body.append(f'<tr><td class=name>{escape(row["name"])}{score}</td>{cells}</tr>')
    return f'<table class="samples"><tr><th class=name>name</th>{heads}</tr>{"".join(body)}</table>'


def _hard_section(hard: dict[str, Any] | None) -> str:
    if not hard:
        return ""
    rows = [f"<tr><td class=name>boundary mIoU (band {hard['boundary_width']:g}&nbsp;px at 1024x2048)</td>"
            f"<td>{_pct(hard['boundary_miou'])}</td></tr>"]
    for width, value in hard["trimap_miou"].items():
        share = hard["trimap_pixel_share"].get(width)
        rows.append(f"<tr><td class=name>trimap mIoU, band {escape(width)}&nbsp;px ({_pct(share)}&nbsp;% of the "
                    f"scored pixels)</td><td>{_pct(value)}</td></tr>")
    if hard.get("thin_iou"):
        rows.append(f"<tr><td class=name>thin-class mIoU ({escape(', '.join(hard['thin_iou']))})</td>"
                    f"<td>{_pct(hard['thin_miou'])}</td></tr>")
    selector = hard.get("selector")
    if selector:
        for ratio, recall, cover in zip(selector["ratios"], selector["error_recall"], selector["coverage"]):
            rows.append(f"<tr><td class=name>selector Top-{ratio:g}: share of the errors inside / share of the "
                        f"pixels it covers</td><td>{_pct(recall)} / {_pct(cover)}</td></tr>")
    return ("<h2>Hard regions (%)</h2><p class=muted>Scores near the boundaries, where most errors are "
            "(definitions: docs/METRICS.md).</p><table><tr><th class=name>score</th><th>%</th></tr>"
            + "".join(rows) + "</table>")


def render_eval_page(doc: dict[str, Any], palette: Sequence[Sequence[int]], worst: Sequence[dict[str, Any]],
                     title: str) -> str:
    """The page for the evaluation document ``doc``; ``worst``: rows for :func:`samples_table`, worst first."""
    confusion = doc.get("confusion_train_ids") or {}
    cityscapes = (doc.get("label_set") or {}).get("kind") == "cityscapes"
    extra = ""
    if cityscapes and doc.get("miiou") is not None:
        extra = f", iIoU {_pct(doc['miiou'])}&nbsp;%"
    if cityscapes and doc.get("category_miou") is not None:
        extra += f", category mIoU {_pct(doc['category_miou'])}&nbsp;%"
    parts = [
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{PAGE_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="big">mIoU <b>{_pct(doc.get("miou"))}&nbsp;%</b> over {doc.get("num_images")} images; pixel '
        f'accuracy {_pct(doc.get("pixel_accuracy"))}&nbsp;%{extra}.</p>',
        '<p class=muted>Every number is also in <a href="metrics.json">metrics.json</a>.</p>',
        "<h2>IoU per class (%)</h2>",
        class_bars(doc.get("class_iou") or {}, palette, "IoU per class (%)"),
    ]
    if confusion.get("counts"):
        parts += ["<h2>Confusion matrix</h2><p class=muted>Rows: the true class; columns: the predicted class; each "
                  "row shows where that class's pixels went (share of the row, dark = none, yellow = all; hover a "
                  "cell for its value). &ldquo;other&rdquo;: predictions outside the scored classes.</p>",
                  heatmap_svg(confusion["counts"], confusion["rows"], confusion["columns"], "confusion matrix",
                              cell=30 if len(confusion["rows"]) <= 10 else 20)]
    parts.append(_hard_section(doc.get("hard_regions")))
    if worst:
        parts += ["<h2>The worst images</h2><p class=muted>Lowest mIoU first. Black in the ground truth: pixels "
                  "that are not scored.</p>",
                  samples_table(worst, [("image", "image"), ("prediction", "prediction"), ("truth", "ground truth")])]
    parts.append("</body></html>\n")
    return "\n".join(parts)
