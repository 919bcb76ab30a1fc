"""The run folder's curve.svg and report.html: redrawn at every logged step and validation, readable while
the run goes on (the page reloads itself until the run ends), picked up again from log.jsonl on resume."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from fornet_cli.training.curve import CURVE_NAME, REPORT_NAME, RunCurve
from fornet_cli.viz.charts import nice_ticks, training_curve_svg


def _points(svg: str, kind: str) -> int:
    found = re.search(rf'<polyline class="{kind}" points="([^"]*)"', svg)
    return 0 if found is None else len(found.group(1).split())


def test_the_curve_is_redrawn_at_every_entry_and_resumes_from_the_log(tmp_path: Path) -> None:
    curve = RunCurve(tmp_path, tmp_path / "log.jsonl", "fornet_mbv3", iters=30)
    for it in (10, 20):
        curve.add({"iter": it, "loss": 3.0 / it}, it, None)
        assert _points((tmp_path / CURVE_NAME).read_text(), "loss") == it // 10
    curve.add({"iter": 20, "val": {"miou": 0.25}}, 20, 0.25)
    svg = (tmp_path / CURVE_NAME).read_text()
    ET.fromstring(svg)  # well-formed: it opens as an .svg file
    assert _points(svg, "miou") == 1
    page = (tmp_path / REPORT_NAME).read_text()
    assert 'http-equiv="refresh"' in page and "iteration 20 of 30" in page and "25.00" in page
    curve.write(30, 0.25, running=False)
    assert 'http-equiv="refresh"' not in (tmp_path / REPORT_NAME).read_text()  # finished: no more reloading

    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(e) + "\n" for e in curve.entries) + '{"iter": 3\n')  # a cut line is skipped
    resumed = RunCurve(tmp_path, log, "fornet_mbv3", iters=30)
    assert len(resumed.entries) == 3


def test_axes_and_an_empty_curve() -> None:
    assert nice_ticks(0, 420, 6) == [0, 100, 200, 300, 400, 500]
    assert nice_ticks(0, 0.37, 5) == [0, 0.1, 0.2, 0.3, 0.4]
    svg = training_curve_svg([], [], 100)
    ET.fromstring(svg)
    assert "no logged step yet" in svg
