"""The show-hardness ``index.html``: the set summary and a table of every figure, sortable by any column.

Self-contained on purpose: inline CSS and JavaScript, no fonts, scripts or images from elsewhere, and every
link relative to the file, so it opens from ``file://`` with no server and no internet.
"""

from __future__ import annotations

import math
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from ..fsutil import atomic_write_text

if TYPE_CHECKING:
    from ..hardness.show import HardnessReport

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
    return "&ndash;" if value is None or math.isnan(value) else f"{100 * value:.{digits}f}&nbsp;%"


def _points(value: float | None) -> str:
    """A difference of two shares, in percentage points."""
    return "&ndash;" if value is None or math.isnan(value) else f"{100 * value:+.1f}&nbsp;pts"


def _num_cell(value: float | None, text: str, cls: str = "") -> str:
    v = "" if value is None or math.isnan(value) else f"{value:.6g}"
    klass = f' class="{cls}"' if cls else ""
    return f'<td data-v="{v}"{klass}>{text}</td>'


def _href(rel: str) -> str:
    """A relative POSIX path as a URL (each segment percent-encoded)."""
    return "/".join(quote(part) for part in rel.split("/"))


def render_gallery(report: HardnessReport) -> str:
    """The HTML text of the gallery."""
    s = report.summary
    model = report.model
    ratios = s.ratios
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>fornet show-hardness: {s.images} images</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Where does the model focus, and is that where it errs?</h1>",
        f'<p class="muted">{escape(str(model["architecture"]))} from {escape(str(model["source"]))}; Top-K ratios '
        f'{escape(", ".join(f"{r:g}" for r in ratios))}; importance grid stride {model["stride"]}. '
        f"{s.images} images ({s.images_with_gt} with ground truth) in {report.seconds:.1f} s. "
        'Numbers also in <a href="summary.json">summary.json</a>.</p>',
    ]
    parts += _summary_section(report)
    parts += _images_section(report)
    parts.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(parts) + "\n"


def _summary_section(report: HardnessReport) -> list[str]:
    s = report.summary
    if s.selector is None or s.band is None or s.gt_band is None:
        return [
            "<h2>Set summary</h2>",
            f"<p>No ground truth: errors cannot be counted. Hardness (mean importance S over the images): "
            f"{s.hardness:.3f}. The Top-K regions cover "
            + ", ".join(f"{_pct(a)} (Top {100 * r:g}&nbsp;%)" for r, a in zip(s.ratios, s.area))
            + " of the pixels.</p>",
        ]
    rows = [
        "<h2>Set summary: the selector against a boundary band of the same area</h2>",
        "<p>Error recall = share of the wrongly predicted pixels inside a region; coverage = share of the "
        "evaluated pixels it spends. The baseline takes the pixels near a <em>predicted</em> boundary (no ground "
        "truth), widened until it covers the same area as the selector's region.</p>",
        "<table><thead><tr><th class=name>Top-K region</th><th>coverage</th><th>selector error recall</th>"
        "<th>lift</th><th>band error recall (same area)</th><th>band width</th><th>selector &minus; band (points)</th>"
        "<th>GT boundary band inside</th></tr></thead><tbody>",
    ]
    sel = s.selector
    for i, r in enumerate(s.ratios):
        m = s.matched[i]
        diff = None if m is None else sel.error_recall[i] - m.error_recall
        cls = "" if diff is None or math.isnan(diff) else ("good" if diff > 0 else "bad")
        rows.append(
            f"<tr><td class=name>Top {100 * r:g}&nbsp;%</td><td>{_pct(sel.coverage[i])}</td>"
            f"<td>{_pct(sel.error_recall[i])}</td><td>{_lift(sel.lift[i])}</td>"
            f"<td>{_pct(None if m is None else m.error_recall)}</td>"
            f"<td>{'&ndash;' if m is None else f'{m.width:.1f}&nbsp;px'}</td>"
            f'<td class="{cls}">{_points(diff)}</td><td>{_pct(s.gt_band_inside[i])}</td></tr>'
        )
    widths = ", ".join(f"{d}&nbsp;px at {size}" for size, d in s.band_widths_px.items())
    rows += [
        "</tbody></table>",
        f"<p>Fixed band, d = {s.band_width:g}&nbsp;px at 1024x2048 ({widths}): covers {_pct(s.band.coverage[0])} "
        f"and finds {_pct(s.band.error_recall[0])} of the errors (lift {_lift(s.band.lift[0])}). "
        f"Reference with ground truth: the band around the true boundaries covers {_pct(s.gt_band.coverage[0])} "
        f"and holds {_pct(s.gt_band.error_recall[0])} of the errors. mIoU over the set {_pct(s.miou)}, "
        f"{_pct(sel.error_rate)} of the evaluated pixels wrong.</p>",
    ]
    return rows


def _lift(value: float) -> str:
    return "&ndash;" if math.isnan(value) else f"{value:.2f}"


def _images_section(report: HardnessReport) -> list[str]:
    ratios = report.summary.ratios
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
    for im in report.images:
        fig, thumb = im.extra["figure"], im.extra["thumbnail"]
        cells = [
            f'<td class=thumb><a href="{_href(fig)}"><img src="{_href(thumb)}" alt="{escape(im.name)}" '
            'loading="lazy" width="256"></a></td>',
            f'<td class=name><a href="{_href(fig)}">{escape(im.name)}</a></td>',
            _num_cell(im.importance_mean, f"{im.importance_mean:.3f}"),
            _num_cell(im.miou, _pct(im.miou)),
            _num_cell(im.error_rate, _pct(im.error_rate)),
        ]
        for i in range(len(ratios)):
            if im.topk is None:
                cells.append(_num_cell(None, f"&ndash; / {_pct(im.area[i], 0)}"))
            else:
                rec, cov = im.topk.error_recall[i], im.topk.coverage[i]
                cells.append(_num_cell(rec, f"{_pct(rec, 0)} / {_pct(cov, 0)}"))
        if im.band is None:
            cells.append(_num_cell(None, "&ndash;"))
        else:
            rec, cov = im.band.error_recall[0], im.band.coverage[0]
            cells.append(_num_cell(rec, f"{_pct(rec, 0)} / {_pct(cov, 0)}"))
        rows.append(f"<tr>{''.join(cells)}</tr>")
    rows.append("</tbody></table>")
    if report.failed:
        rows.append("<h2>Not shown</h2><ul>")
        rows += [f"<li>{escape(p)}: {escape(e)}</li>" for p, e in report.failed]
        rows.append("</ul>")
    return rows


def write_gallery(report: HardnessReport, target: Path) -> Path:
    """Write the gallery atomically; links are relative to ``target``'s folder (the output folder)."""
    return atomic_write_text(target, render_gallery(report))
