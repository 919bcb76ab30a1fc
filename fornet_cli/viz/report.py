"""The demo's ``report.html``: what was trained, pictures of what it predicts, its training curve, its scores per
class, and links to everything the demo wrote.

It renders the demo's ``report.json`` document (``DemoReport.to_dict()``). Self-contained: inline CSS and SVG,
relative links and pictures, no scripts; it opens from ``file://``.
"""

from __future__ import annotations

import html
from typing import Any

from ..fmt import pct
from .charts import training_curve_svg
from .eval_page import PAGE_CSS, class_bars, samples_table
from .run_page import curve_from_log


def _pct(v: Any) -> str:
    return pct(v, missing="–")


def _default_note(default: dict[str, Any]) -> str:
    if default.get("set"):
        return (f"<p>This model is now your default weights: <code>fornet predict images/ --out masks/</code> uses it "
                f"(saved in <code>{html.escape(default['settings'])}</code>). Change it with <code>fornet weights "
                "default REF</code>, forget it with <code>fornet weights default --unset</code>.</p>")
    if default.get("current"):
        return (f"<p>Your default weights stay {html.escape(default['current']['ref'])}; to use this model instead: "
                f"<code>fornet weights default {html.escape(default['this_model'])}</code>.</p>")
    return ""


def render_demo_report(report: dict[str, Any]) -> str:
    """A self-contained page (no scripts, no external files) with the demo's pictures, curve and scores."""
    s, tr = report["scores"], report["train"]
    palette = (report.get("classes") or {}).get("palette") or []
    steps, vals = curve_from_log(tr.get("log") or [])
    if not vals:  # a report.json of an older demo: the validations only
        vals = [(h["iter"], h.get("miou")) for h in tr["history"]]
    timing = "".join(f"<tr><td class=name>{html.escape(k)}</td><td>{v:.1f} s</td></tr>"
                     for k, v in report["seconds"].items())
    verified = "verified" if report["export"].get("verified") else "NOT verified"
    samples = report.get("samples") or []
    kinds = [("image", "image"), ("prediction", "prediction"), ("truth", "ground truth"),
             ("importance", "importance S, largest Top-K region outlined")]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fornet demo report</title><style>{PAGE_CSS}</style></head><body>
<h1>fornet demo</h1>
<p class="big">{html.escape(tr['model'])} (our efficient FoR-Net variant), trained from scratch for {tr['iterations']}
iterations on generated street scenes ({html.escape(tr['device'])}): validation mIoU <b>{_pct(s.get('miou'))}&nbsp;%</b>,
boundary mIoU {_pct(s.get('boundary_miou'))}&nbsp;%, thin-class mIoU {_pct(s.get('thin_miou'))}&nbsp;%.</p>
<p class=muted>These numbers are on fornet's synthetic data, not on Cityscapes.</p>
{_default_note(report.get("default_weights") or {})}
<ul>
<li><a href="hardness/index.html">show-hardness gallery</a>: where the model focuses, and whether that is where it errs</li>
<li><a href="metrics.json">metrics.json</a>: every official and hard-region score</li>
<li><a href="predictions/">predictions/</a>: colour masks, overlays, labelId files</li>
<li><a href="model.onnx">model.onnx</a> ({verified} in onnxruntime)</li>
<li><a href="train/">train/</a>: config.json, log.jsonl, checkpoints, the run's own <a href="train/report.html">report</a></li>
</ul>
<h2>What it predicts: validation images</h2>
<p class=muted>The importance map is the score S that ranks the cells of the feature grid (dark = low, yellow = high;
for <code>fornet_mbv3</code> since fornet 0.4 the share of wrong pixels its first pass, branches off, expects in each
cell); the outline is the largest Top-K region, the positions the branches refine. Black in the ground truth: pixels not scored.</p>
{samples_table(samples, kinds, 200) if samples else "<p>No pictures.</p>"}
<h2>Training curve</h2>
{training_curve_svg(steps, vals, int(tr.get('iters') or tr['iterations']))}
<h2>IoU per class (%)</h2>
{class_bars(s.get('class_iou') or {}, palette, "validation IoU per class (%)")}
<h2>Time</h2><table>{timing}</table>
</body></html>
"""
