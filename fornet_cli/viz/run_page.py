"""A training run's ``report.html``: the curve so far and the numbers behind it, rewritten as the run goes
(so it can be opened while a long run trains; while it runs the page reloads itself every 30 s)."""

from __future__ import annotations

from html import escape
from typing import Any

from ..fmt import pct
from .charts import training_curve_svg

_CSS = ("body{font:15px/1.45 system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}"
        ".muted{color:#666}")


def curve_from_log(entries: list[dict[str, Any]]) -> tuple[list[tuple[int, float]], list[tuple[int, float | None]]]:
    """(iteration, loss) of the logged steps and (iteration, val mIoU) of the validations in a log.jsonl."""
    steps = [(int(e["iter"]), float(e["loss"])) for e in entries if "loss" in e and "iter" in e]
    vals = [(int(e["iter"]), e["val"].get("miou")) for e in entries if isinstance(e.get("val"), dict)]
    return steps, vals


def render_run_page(run: dict[str, Any], entries: list[dict[str, Any]], running: bool) -> str:
    """The page for ``run`` (model, iters, iteration, best) and its log ``entries``."""
    steps, vals = curve_from_log(entries)
    rows = "".join(f"<tr><td>{i}</td><td>{pct(v, 2)}</td></tr>" for i, v in vals)
    refresh = '<meta http-equiv="refresh" content="30">' if running else ""
    state = "training (this page reloads every 30 s)" if running else "finished"
    last = steps[-1][1] if steps else None
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{refresh}'
        f"<title>fornet run: {escape(str(run['model']))}</title><style>{_CSS}</style></head><body>"
        f"<h1>{escape(str(run['model']))}: iteration {run['iteration']} of {run['iters']}</h1>"
        f'<p class="muted">{state}. Last logged loss {"-" if last is None else f"{last:.4f}"}; best val mIoU '
        f"{pct(run.get('best'), 2)}&nbsp;%. The chart is also in <a href=\"curve.svg\">curve.svg</a>; every step "
        'in <a href="log.jsonl">log.jsonl</a>.</p>'
        f"{training_curve_svg(steps, vals, int(run['iters']))}"
        f"<h2>Validations</h2><table><tr><th>iteration</th><th>mIoU (%)</th></tr>{rows}</table>"
        "</body></html>\n"
    )
