"""The SVG charts: well-formed, escaped, and drawing what they are given."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np

from fornet_cli.viz.charts import bar_chart_svg, heatmap_svg
from fornet_cli.viz.samples import colorize, safe_name

NS = "{http://www.w3.org/2000/svg}"


def test_bars_scale_with_the_value_and_skip_undefined_ones() -> None:
    svg = bar_chart_svg([("road", 0.5, (1, 2, 3)), ("a<b&c", None, (4, 5, 6)), ("sky", 1.0, (7, 8, 9))], "IoU")
    root = ET.fromstring(svg)  # a label with < and & is escaped
    bars = [r for r in root.iter(f"{NS}rect") if r.get("class") == "bar"]
    assert len(bars) == 2 and float(bars[1].get("width")) == 2 * float(bars[0].get("width"))
    assert "a&lt;b&amp;c" in svg and "50.0" in svg and "&#8211;" in svg


def test_the_heat_map_normalises_each_row() -> None:
    svg = heatmap_svg([[3, 1], [0, 0]], ["x", "y"], ["x", "other"], "confusion")
    titles = [t.text for t in ET.fromstring(svg).iter(f"{NS}title")][1:]
    assert titles == ["x predicted as x: 75.0%", "x predicted as other: 25.0%", "y: no pixels", "y: no pixels"]


def test_sample_helpers() -> None:
    assert safe_name("a/b c:d") == "a_b_c_d"
    out = colorize(np.array([[0, 1, 255]], np.uint8), [[10, 20, 30], [40, 50, 60]])
    assert out.tolist() == [[[10, 20, 30], [40, 50, 60], [0, 0, 0]]]
