"""`fornet predict`: formats, tree mirroring, bad files, EXIF, overwrite rules, Hub vs local, real fixtures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from events import HANG_LIMIT
from PIL import Image
from typer.testing import CliRunner

from fornet_cli.cli import app
from fornet_cli.data.labels import TRAIN_ID_TO_COLOR, TRAIN_ID_TO_ID

runner = CliRunner()


def _image(path: Path, size: tuple[int, int] = (96, 64), seed: int = 0, **save) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path, **save)
    return path


@pytest.fixture
def images(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    _image(root / "a.png", seed=1)
    _image(root / "sub" / "b.jpg", seed=2)
    _image(root / "sub" / "deeper" / "c.png", size=(77, 51), seed=3)
    return root


def test_every_format_and_the_mirrored_tree(model_dir: Path, images: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["predict", str(images), "--out", str(out), "-w", str(model_dir),
                                 "--format", "trainid,labelid,color,overlay", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["images"] == 3 and summary["written"] == 3 and summary["failed"] == []
    for fmt in ("trainid", "labelid", "color", "overlay"):
        for rel in ("a.png", "sub/b.png", "sub/deeper/c.png"):
            assert (out / fmt / rel).is_file(), (fmt, rel)
    train = np.array(Image.open(out / "trainid" / "sub/deeper/c.png"))
    assert train.shape == (51, 77) and train.max() < 19
    assert np.array_equal(np.array(Image.open(out / "labelid" / "sub/deeper/c.png")), TRAIN_ID_TO_ID[train])
    color = np.array(Image.open(out / "color" / "sub/deeper/c.png"))
    assert np.array_equal(color, TRAIN_ID_TO_COLOR[train])
    assert np.array(Image.open(out / "overlay" / "a.png")).shape == (64, 96, 3)


def test_single_format_writes_directly_and_matches_the_library(model_dir: Path, images: Path, tmp_path: Path) -> None:
    out = tmp_path / "masks"
    assert runner.invoke(app, ["predict", str(images / "a.png"), "--out", str(out), "-w", str(model_dir)]).exit_code == 0
    mask = np.array(Image.open(out / "a.png"))
    from fornet_cli.weights.resolve import load_weights

    loaded = load_weights(model_dir)
    x = torch.from_numpy(np.array(Image.open(images / "a.png"))).permute(2, 0, 1)[None].float() / 255
    x = (x - torch.tensor(loaded.meta.mean).view(1, 3, 1, 1)) / torch.tensor(loaded.meta.std).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = loaded.model(x).argmax(1)[0].numpy()
    assert np.array_equal(mask, expected)


def test_corrupt_file_is_reported_and_the_rest_written(model_dir: Path, images: Path, tmp_path: Path) -> None:
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (images / "empty.jpg").write_bytes(b"")
    out = tmp_path / "out"
    result = runner.invoke(app, ["predict", str(images), "--out", str(out), "-w", str(model_dir)])
    assert result.exit_code == 1
    assert "3 written" in result.stderr and "2 failed" in result.stderr
    assert "broken.png" in result.stderr and "empty.jpg" in result.stderr
    assert sorted(p.name for p in out.rglob("*.png")) == ["a.png", "b.png", "c.png"]


def test_exif_rotation_is_applied(model_dir: Path, tmp_path: Path) -> None:
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 90, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    img.save(tmp_path / "rotated.jpg", exif=exif)
    out = tmp_path / "out"
    assert runner.invoke(app, ["predict", str(tmp_path / "rotated.jpg"), "--out", str(out), "-w", str(model_dir)]).exit_code == 0
    assert np.array(Image.open(out / "rotated.png")).shape == (90, 40)


def test_overwrite_rules_and_the_input_tree(model_dir: Path, images: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["predict", str(images), "--out", str(out), "-w", str(model_dir)]
    assert runner.invoke(app, args).exit_code == 0
    (out / "a.png").write_bytes(b"keep me")
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "3 skipped" in again.stderr
    assert (out / "a.png").read_bytes() == b"keep me"
    forced = runner.invoke(app, [*args, "--overwrite"])
    assert forced.exit_code == 0 and (out / "a.png").read_bytes() != b"keep me"
    inside = runner.invoke(app, ["predict", str(images), "--out", str(images / "masks"), "-w", str(model_dir)])
    assert inside.exit_code == 1 and "inside the input folder" in inside.stderr
    before = sorted(p.relative_to(images) for p in images.rglob("*"))
    allowed = runner.invoke(app, ["predict", str(images / "a.png"), "--out", str(images), "-w", str(model_dir),
                                  "--allow-input-tree", "--overwrite"])
    assert allowed.exit_code == 1 and "would overwrite an input file" in allowed.stderr
    assert sorted(p.relative_to(images) for p in images.rglob("*")) == before


def test_unknown_weights_name_lists_close_matches(images: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["predict", str(images), "--out", str(tmp_path / "o"), "-w", "resnet18.tv_in1kk"])
    assert result.exit_code == 1 and "Did you mean 'resnet18.tv_in1k'" in result.stderr


@pytest.mark.slow
def test_hub_model_predicts_the_same_masks_as_the_local_folder(model_dir: Path, images: Path, tmp_path: Path) -> None:
    from hubserver import FakeHub

    hub = FakeHub().start()
    try:
        hub.add("fornet/random-mbv3", {p.name: p.read_bytes() for p in model_dir.iterdir()})
        env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HUB_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, "-m", "fornet_cli", "predict", str(images), "--out", str(tmp_path / "hub"),
               "-w", "hf://fornet/random-mbv3"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=HANG_LIMIT)
        assert proc.returncode == 0, proc.stderr
    finally:
        hub.stop()
    assert runner.invoke(app, ["predict", str(images), "--out", str(tmp_path / "local"), "-w", str(model_dir)]).exit_code == 0
    for rel in ("a.png", "sub/b.png", "sub/deeper/c.png"):
        assert (tmp_path / "hub" / rel).read_bytes() == (tmp_path / "local" / rel).read_bytes()


@pytest.mark.slow
def test_real_fixtures_all_formats_and_the_official_evaluator(model_dir: Path, real_fixtures: Path, tmp_path: Path) -> None:
    mini = real_fixtures / "cityscapes-mini"
    out = tmp_path / "pred"
    result = runner.invoke(app, ["predict", str(mini / "leftImg8bit"), "--out", str(out), "-w", str(model_dir),
                                 "--format", "trainid,labelid,color,overlay", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["written"] == 9
    for fmt in ("trainid", "labelid", "color", "overlay"):
        files = sorted((out / fmt).rglob("*.png"))
        assert len(files) == 9 and Image.open(files[0]).size == (2048, 1024)
    ours = runner.invoke(app, ["eval", "--predictions", str(out / "labelid"), "--root", str(mini), "--split", "train",
                               "--no-hard", "--json", "-"])
    assert ours.exit_code == 0, ours.output
    miou = json.loads(ours.stdout)["miou"]
    official = pytest.importorskip("cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling")
    np.in1d = np.isin  # cityscapesscripts 2.3.0 calls np.in1d, removed in NumPy 2.4
    gts = sorted(str(p) for p in (mini / "gtFine" / "train").rglob("*_gtFine_labelIds.png"))
    preds = [str(out / "labelid" / "train" / "aachen" / Path(g).name.replace("gtFine_labelIds", "leftImg8bit")) for g in gts]
    args = official.args
    args.evalInstLevelScore, args.quiet, args.JSONOutput = True, True, False
    args.exportFile = str(tmp_path / "official.json")
    scores = official.evaluateImgLists(preds, gts, args)
    assert scores["averageScoreClasses"] == pytest.approx(miou, abs=1e-6)
