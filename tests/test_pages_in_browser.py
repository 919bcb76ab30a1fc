"""The pages people open, opened in a real browser (headless Chromium): the demo's report.html (from a tiny
training run, not the 7-minute demo), the eval report and the show-hardness gallery. Every image loads, every
local link leads to a file, the console stays free of errors, the gallery sorts when a column header is
clicked, and a screenshot of each is saved.

Required when ``CI`` is set (`make test` installs the browser); elsewhere skipped, with the reason, only when
the browser cannot be had.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from pages import PageCheck, chromium, missing, open_page, screenshot
from typer.testing import CliRunner

from fornet_cli.cli import app

runner = CliRunner()
SHOTS = os.environ.get("FORNET_SCREENSHOTS")  # a folder to keep the screenshots in (the README's come from here)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    reason = missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test is required in CI: {reason}")
        pytest.skip(f"no browser here: {reason}")
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo end to end on a tiny generated set and a few iterations (its report, gallery, model)."""
    from fornet_cli.demo import DemoConfig, run_demo
    from fornet_cli.training.config import recipe

    base = tmp_path_factory.mktemp("demo")
    tiny = replace(recipe("cpu-quick"), synth_train=4, synth_val=3, synth_size=(64, 128), crop=(64, 64), batch=2,
                   iters=4, val_every=2, ckpt_every=4, log_every=1, warmup_iters=1, device="cpu")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FORNET_CACHE", str(base / "cache"))
        mp.setenv("FORNET_CONFIG_DIR", str(base / "settings"))
        report = run_demo(DemoConfig(out=base / "out", train_config=tiny, device="cpu"))
    assert report.default_weights["set"] is True  # nothing was set: the demo's model became the default
    return base / "out"


def _shot(browser: object, name: str, tmp_path: Path) -> Path:
    target = Path(SHOTS) / name if SHOTS else tmp_path / name
    target.parent.mkdir(parents=True, exist_ok=True)
    path = screenshot(browser, target)
    assert path.stat().st_size > 5_000  # a picture, not an empty file
    return path


def _check(check: PageCheck, images: int) -> None:
    assert len(check.images) >= images, check.images
    assert check.broken_images == [], f"images that did not load: {check.broken_images}"
    assert check.dead_links == [], f"links to nothing (or to outside the folder): {check.dead_links}"
    assert check.errors == [], f"console errors: {check.errors}"


def test_the_demo_report(browser: object, demo: Path, tmp_path: Path) -> None:
    check = open_page(browser, demo / "report.html")
    _check(check, images=3 * 4)  # three validation images: image, prediction, ground truth, importance
    assert any(link.endswith("/hardness/index.html") for link in check.links)
    assert browser.execute_script("return document.querySelectorAll('svg polyline.loss').length") == 1  # type: ignore[attr-defined]
    assert browser.execute_script("return document.querySelectorAll('svg rect.bar').length") > 0  # type: ignore[attr-defined]
    _shot(browser, "demo-report.png", tmp_path)


def test_the_eval_report(browser: object, demo: Path, tmp_path: Path) -> None:
    report = tmp_path / "eval-report"
    data = next((demo.parent / "cache" / "synth").iterdir())
    result = runner.invoke(app, ["eval", "--weights", str(demo / "train"), "--root", str(data), "--report", str(report)])
    assert result.exit_code == 0, result.output
    check = open_page(browser, report / "index.html")
    _check(check, images=3 * 3)  # the worst three: image, prediction, ground truth
    cells = browser.execute_script("return document.querySelectorAll('svg rect title').length")  # type: ignore[attr-defined]
    assert cells == 19 * 20  # the confusion heat map: 19 classes x (19 + other)
    _shot(browser, "eval-report.png", tmp_path)


def _names(browser: object) -> list[str]:
    return browser.execute_script(  # type: ignore[attr-defined]
        "return Array.from(document.querySelectorAll('#images tbody tr')).map(r => r.cells[1].textContent.trim())")


def test_the_gallery_sorts_by_a_clicked_column(browser: object, demo: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    check = open_page(browser, demo / "hardness" / "index.html")
    _check(check, images=3)
    header = browser.find_element(By.XPATH, "//table[@id='images']//th[normalize-space()='image']")  # type: ignore[attr-defined]
    header.click()
    ascending = _names(browser)
    header.click()
    descending = _names(browser)
    assert ascending == sorted(ascending) and len(set(ascending)) == 3
    assert descending == ascending[::-1] != ascending
    _shot(browser, "gallery.png", tmp_path)
