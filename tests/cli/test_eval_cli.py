"""`fornet eval --predictions`: table on stderr, JSON on stdout or in a file, errors as one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fornet_cli.cli import app

runner = CliRunner()
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities of TorchVision")


def _tiny_set(root: Path) -> tuple[Path, Path]:
    """One 16 x 32 image: road / car instance, prediction half right."""
    gt = np.full((16, 32), 7, dtype=np.uint8)
    gt[4:12, 8:20] = 26
    inst = gt.astype(np.uint16)
    inst[4:12, 8:20] = 26001
    pred = gt.copy()
    pred[:, :16] = 7
    folder = root / "cs" / "gtFine" / "val" / "x"
    folder.mkdir(parents=True)
    Image.fromarray(gt).save(folder / "x_000000_000001_gtFine_labelIds.png")
    Image.fromarray(inst).save(folder / "x_000000_000001_gtFine_instanceIds.png")
    (root / "pred").mkdir()
    Image.fromarray(pred).save(root / "pred" / "x_000000_000001_leftImg8bit.png")
    return root / "pred", root / "cs"


def test_help_lists_eval() -> None:
    result = runner.invoke(app, ["eval", "--help"])
    assert result.exit_code == 0 and "--predictions" in result.output and "--boundary-width" in result.output


def test_json_to_stdout_reproduces_the_reference_scores(real_fixtures: Path) -> None:
    root = real_fixtures / "cityscapes-eval"
    if not root.is_dir():
        pytest.skip(f"{root} is missing")
    pred = root / "predictions" / "hrnet_ocr_w48"
    result = runner.invoke(app, ["eval", "--predictions", str(pred), "--root", str(root), "--json", "-"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    reference = json.loads((root / "reference_scores.json").read_text())
    assert data["miou"] == pytest.approx(reference["averageScoreClasses"], abs=1e-6)
    assert data["miiou"] == pytest.approx(reference["averageScoreInstClasses"], abs=1e-6)
    assert data["class_iou"]["truck"] is None
    assert "road" in result.stderr and "mIoU (official)" in result.stderr and "boundary mIoU" in result.stderr
    assert "56.77" in result.stderr  # the mean IoU in percent


def test_json_file_is_written_atomically(tmp_path: Path) -> None:
    pred, cs = _tiny_set(tmp_path)
    out = tmp_path / "reports" / "scores.json"
    result = runner.invoke(
        app,
        ["eval", "--predictions", str(pred), "--root", str(cs), "--json", str(out), "--boundary-width", "1"]
        + ["--per-image"],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # human output on stderr only
    data = json.loads(out.read_text())
    assert [p.name for p in out.parent.iterdir()] == ["scores.json"]  # no temporary file left
    assert data["class_iou"]["car"] == pytest.approx(32 / 96) and data["per_image"][0]["name"] == "x_000000_000001"
    assert data["hard_regions"]["boundary_width"] == 1.0
    assert data["num_images"] == 1


def test_no_hard_and_dataset_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pred, cs = _tiny_set(tmp_path)
    monkeypatch.setenv("CITYSCAPES_DATASET", str(cs))
    result = runner.invoke(app, ["eval", "--predictions", str(pred), "--no-hard", "--json", "-"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["hard_regions"] is None
    assert "boundary" not in result.stderr


def test_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORNET_DEBUG", raising=False)
    monkeypatch.delenv("CITYSCAPES_DATASET", raising=False)
    pred, cs = _tiny_set(tmp_path)
    (pred / "x_000000_000001_leftImg8bit.png").rename(pred / "other.png")
    result = runner.invoke(app, ["eval", "--predictions", str(pred), "--root", str(cs)])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: No prediction for 1 of 1 ground-truth images (x_000000_000001)")
    png = str(tmp_path / "a.png")
    usage = runner.invoke(app, ["eval", "--predictions", str(pred), "--root", str(cs), "--json", png])
    assert usage.exit_code == 2 and "looks like an image" in usage.output
    no_root = runner.invoke(app, ["eval", "--predictions", str(pred)])
    assert no_root.exit_code == 2 and "--root" in no_root.output
