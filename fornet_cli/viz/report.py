"""The demo's ``report.html``: what was trained, how it scores, and links to everything the demo wrote."""

from __future__ import annotations

import html
from typing import Any

from ..fmt import pct


def _pct(v: Any) -> str:
    return pct(v, missing="–")


def render_demo_report(report: dict[str, Any]) -> str:
    """A self-contained page (no scripts, no external files) linking the gallery, metrics and outputs.

    ``report`` is the demo's ``report.json`` document (``DemoReport.to_dict()``).
    """
    s, tr = report["scores"], report["train"]
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{_pct(v)}</td></tr>" for name, v in (s.get("class_iou") or {}).items()
    )
    curve = "".join(f"<tr><td>{h['iter']}</td><td>{_pct(h.get('miou'))}</td></tr>" for h in tr["history"])
    timing = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.1f} s</td></tr>" for k, v in report["seconds"].items())
    verified = "verified" if report["export"].get("verified") else "NOT verified"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fornet demo report</title>
<style>body{{font:15px/1.45 system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;margin:.5em 0 1.5em}}td,th{{border:1px solid #ccc;padding:.2em .6em;text-align:left}}
.big{{font-size:1.3em}}code{{background:#f4f4f4;padding:0 .3em}}</style></head><body>
<h1>fornet demo</h1>
<p class="big">{html.escape(tr['model'])} (our efficient FoR-Net variant), trained from scratch for {tr['iterations']}
iterations on generated street scenes ({html.escape(tr['device'])}): validation mIoU <b>{_pct(s.get('miou'))}</b>,
boundary mIoU {_pct(s.get('boundary_miou'))}, thin-class mIoU {_pct(s.get('thin_miou'))}.</p>
<p>These numbers are on fornet's synthetic data, not on Cityscapes.</p>
<ul>
<li><a href="hardness/index.html">show-hardness gallery</a>: where the model focuses, and whether that is where it errs</li>
<li><a href="metrics.json">metrics.json</a>: every official and hard-region score</li>
<li><a href="predictions/">predictions/</a>: colour masks, overlays, labelId files</li>
<li><a href="model.onnx">model.onnx</a> ({verified} in onnxruntime)</li>
<li><a href="train/">train/</a>: config.json, log.jsonl, checkpoints</li>
</ul>
<h2>Validation mIoU during training</h2><table><tr><th>iteration</th><th>mIoU (%)</th></tr>{curve}</table>
<h2>Class IoU (%)</h2><table>{rows}</table>
<h2>Time</h2><table>{timing}</table>
</body></html>
"""
