"""The show-hardness ``index.html``: the set summary and a table of every figure, sortable by any column.

It renders the document that ``summary.json`` holds (``HardnessReport.to_dict()``), so the page and the
JSON cannot disagree, and this module needs nothing from the package that computed the numbers.
Self-contained on purpose: inline CSS and JavaScript, no fonts, scripts or images from elsewhere, and every
link relative to the file, so it opens from ``file://`` with no server and no internet.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..fmt import pct
from ..fsutil import atomic_write_text

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5em;color:#18181b;background:#fff}
h1{font-size:1.4em;margin:0 0 .3em} h2{font-size:1.1em;margin:1.4em 0 .4em}
p{margin:.3em 0;max-width:70em} .muted{color:#5b5b66}
table{border-collapse:collapse;font-size:.92em}
th,td{border-bottom:1px solid #e2e2e8;padding:.3em .6em;text-align:right;vertical-align:middle}
th{background:#eef0f4;position:sticky;top:0}
td.name,th.name{text-align:left} td.thumb{padding:.15em .4em}
table.images th{cursor:pointer;user-select:none} table.images th:hover{background:#dde2ea}
th.asc::after{content:" \\25B2"} th.desc::after{content:" \\25BC"}
img{display:block;border:1px solid #ccc}
.good{color:#0a7d32;font-weight:600} .bad{color:#b3261e;font-weight:600}
"""

# Sorts rows by the clicked column's data-v (numbers) or text; rows without a value go last either way.
_JS = """
(function(){
  var table=document.getElementById('images'); if(!table){return;}
  var heads=table.tHead.rows[0].cells, body=table.tBodies[0];
  function key(row,i){var c=row.cells[i], v=c.getAttribute('data-v');
    if(v===null){return c.textContent.trim().toLowerCase();} return v===''?null:parseFloat(v);}
  function sortBy(i,dir){
    var rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(a,b){var x=key(a,i), y=key(b,i);
      if(x===null&&y===null){return 0;} if(x===null){return 1;} if(y===null){return -1;}
      return (x<y?-1:x>y?1:0)*dir;});
    rows.forEach(function(r){body.appendChild(r);});
    for(var j=0;j<heads.length;j++){heads[j].classList.remove('asc','desc');}
    heads[i].classList.add(dir>0?'asc':'desc');
  }
  for(var i=0;i<heads.length;i++){(function(i){
    if(heads[i].hasAttribute('data-nosort')){return;}
    heads[i].addEventListener('click',function(){
      var dir=heads[i].classList.contains('desc')?1:heads[i].classList.contains('asc')?-1:
        (heads[i].getAttribute('data-first')==='asc'?1:-1);
      sortBy(i,dir);});
  })(i);}
  var first=table.getAttribute('data-sort');
  if(first!==null){sortBy(parseInt(first,10),-1);}
})();
"""


def _pct(value: float | None, digits: int = 1) -> str:
    return pct(value, digits, missing="&ndash;", suffix="&nbsp;%")


def _points(value: float | None) -> str:
    """A difference of two shares, in percentage points."""
    return pct(value, 1, missing="&ndash;", suffix="&nbsp;pts", sign=True)


def _fixed(value: float | None, spec: str, unit: str = "") -> str:
    return "&ndash;" if value is None else f"{format(value, spec)}{unit}"


def _num_cell(value: float | None, text: str, cls: str = "") -> str:
    v = "" if value is None else f"{value:.6g}"
    klass = f' class="{cls}"' if cls else ""
    return f'<td data-v="{v}"{klass}>{text}</td>'


def _href(rel: str) -> str:
    """A relative POSIX path as a URL (each segment percent-encoded)."""
    return "/".join(quote(part) for part in rel.split("/"))


def render_gallery(report: dict[str, Any]) -> str:
    """The HTML text of the gallery for a show-hardness report document (summary.json's content)."""
    s, model = report["summary"], report["model"]
    ratios = ", ".join(f"{r:g}" for r in model["topk_ratios"])
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>fornet show-hardness: {s['images']} images</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Where does the model focus, and is that where it errs?</h1>",
        f'<p class="muted">{escape(str(model["architecture"]))} from {escape(str(model["source"]))}; Top-K ratios '
        f"{escape(ratios)}; importance grid stride {model['stride']}. "
        f"{s['images']} images ({s['images_with_ground_truth']} with ground truth) in {report['seconds']:.1f} s. "
        'Numbers also in <a href="summary.json">summary.json</a>.</p>',
    ]
    parts += _summary_section(s)
    parts += _images_section(report)
    parts.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(parts) + "\n"


def _summary_section(s: dict[str, Any]) -> list[str]:
    rows_data = s["selector"]
    if s["band_fixed"] is None or s["gt_band"] is None:
        return [
            "<h2>Set summary</h2>",
            f"<p>No ground truth: errors cannot be counted. Hardness (mean importance S over the images): "
            f"{_fixed(s['hardness'], '.3f')}. The Top-K regions cover "
            + ", ".join(f"{_pct(row['area'])} (Top {100 * row['ratio']:g}&nbsp;%)" for row in rows_data)
            + " of the pixels.</p>",
        ]
    rows = [
        "<h2>Set summary: the selector against a boundary band of the same area</h2>",
        "<p>Error recall = share of the wrongly predicted pixels inside a region; coverage = share of the "
        "evaluated pixels it spends. The baseline takes the pixels near a <em>predicted</em> boundary (no ground "
        "truth), widened until it covers the same area as the selector's region; the band cells are as many grid "
        "cells as the selector takes, those holding the most pixels of the fixed band (the band at the selector's "
        "resolution). The logit-gap rule takes as many grid cells as the selector where the prediction is least "
        "sure (the gap between its two highest logits); the ceiling takes the cells holding the most errors: no selector on this grid can do better.</p>",
        "<table><thead><tr><th class=name>Top-K region</th><th>coverage</th><th>selector error recall</th>"
        "<th>lift</th><th>band error recall (same area)</th><th>band width</th><th>selector &minus; band (points)</th>"
        "<th>band cells (same number)</th><th>logit-gap cells (same number)</th>"
        "<th>ceiling: cells with most errors</th>"
        "<th>GT boundary band inside</th></tr></thead><tbody>",
    ]
    for row in rows_data:
        m = row.get("band_area_matched")
        diff = row.get("recall_minus_band")
        cls = "" if diff is None else ("good" if diff > 0 else "bad")
        rows.append(
            f"<tr><td class=name>Top {100 * row['ratio']:g}&nbsp;%</td><td>{_pct(row['coverage'])}</td>"
            f"<td>{_pct(row['error_recall'])}</td><td>{_fixed(row['lift'], '.2f')}</td>"
            f"<td>{_pct(None if m is None else m['error_recall'])}</td>"
            f"<td>{_fixed(None if m is None else m['width_px'], '.1f', '&nbsp;px')}</td>"
            f'<td class="{cls}">{_points(diff)}</td><td>{_pct(row.get("band_cells_error_recall"))}</td>'
            f'<td>{_pct(row.get("gap_error_recall"))}</td>'
            f'<td>{_pct(row.get("ceiling_error_recall"))}</td><td>{_pct(row["gt_band_inside"])}</td></tr>'
        )
    band, gt = s["band_fixed"], s["gt_band"]
    widths = ", ".join(f"{d}&nbsp;px at {size}" for size, d in band["width_px"].items())
    rows += [
        "</tbody></table>",
        f"<p>Fixed band, d = {band['width_px_at_1024x2048']:g}&nbsp;px at 1024x2048 ({widths}): covers "
        f"{_pct(band['coverage'])} and finds {_pct(band['error_recall'])} of the errors (lift "
        f"{_fixed(band['lift'], '.2f')}). Reference with ground truth: the band around the true boundaries covers "
        f"{_pct(gt['coverage'])} and holds {_pct(gt['error_recall'])} of the errors. mIoU over the set "
        f"{_pct(s['miou'])}, {_pct(s['error_rate'])} of the evaluated pixels wrong.</p>",
    ]
    return rows


def _images_section(report: dict[str, Any]) -> list[str]:
    ratios = report["model"]["topk_ratios"]
    heads = [
        '<th data-nosort class=name>figure</th>',
        '<th class=name data-first="asc">image</th>',
        '<th title="mean importance S over the grid">hardness</th>',
        '<th data-first="asc">mIoU</th>',
        "<th>pixels wrong</th>",
        *[f'<th title="share of the errors inside / share of the pixels covered">errors in Top {100 * r:g}&nbsp;%</th>'
          for r in ratios],
        '<th title="share of the errors within d px of a predicted boundary / share of pixels">errors in band</th>',
    ]
    rows = [
        "<h2>Images</h2>",
        '<p class="muted">Click a column to sort (sorted by hardness); click a thumbnail to open the figure. '
        "&ldquo;errors in&rdquo; columns: share of the image's wrong pixels inside the region / share of its "
        "pixels the region covers.</p>",
        f'<table id="images" class="images" data-sort="2"><thead><tr>{"".join(heads)}</tr></thead><tbody>',
    ]
    for im in report["per_image"]:
        fig, thumb, name = im["figure"], im["thumbnail"], im["name"]
        cells = [
            f'<td class=thumb><a href="{_href(fig)}"><img src="{_href(thumb)}" alt="{escape(name)}" '
            'loading="lazy" width="256"></a></td>',
            f'<td class=name><a href="{_href(fig)}">{escape(name)}</a></td>',
            _num_cell(im["hardness"], f"{im['hardness']:.3f}"),
            _num_cell(im["miou"], _pct(im["miou"])),
            _num_cell(im["error_rate"], _pct(im["error_rate"])),
        ]
        for region in im["topk"]:
            if not im["has_ground_truth"]:
                cells.append(_num_cell(None, f"&ndash; / {_pct(region['area'], 0)}"))
            else:
                rec, cov = region["error_recall"], region["coverage"]
                cells.append(_num_cell(rec, f"{_pct(rec, 0)} / {_pct(cov, 0)}"))
        band = im["band"]
        if band is None:
            cells.append(_num_cell(None, "&ndash;"))
        else:
            rec, cov = band["error_recall"], band["coverage"]
            cells.append(_num_cell(rec, f"{_pct(rec, 0)} / {_pct(cov, 0)}"))
        rows.append(f"<tr>{''.join(cells)}</tr>")
    rows.append("</tbody></table>")
    if report["failed"]:
        rows.append("<h2>Not shown</h2><ul>")
        rows += [f"<li>{escape(f['path'])}: {escape(f['error'])}</li>" for f in report["failed"]]
        rows.append("</ul>")
    return rows


def write_gallery(report: dict[str, Any], target: Path) -> Path:
    """Write the gallery atomically; links are relative to ``target``'s folder (the output folder)."""
    return atomic_write_text(target, render_gallery(report))
