"""Your own data, end to end through the CLI: a generated 5-class folder data set is checked, trained on,
evaluated (numbers and report), predicted and shown; the outputs name its classes and use its colours; and
every kind of bad input is refused with a message that names the file and what to do."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from readonly import unchanged_folder
from typer.testing import CliRunner

from fornet_cli.cli import app
from fornet_cli.data.io import write_png
from fornet_cli.weights.checkpoint import load_checkpoint

runner = CliRunner()
NAMES = ["ground", "structure", "greenery", "sky", "agent"]
COLORS = [[200, 100, 50], [90, 90, 90], [20, 160, 40], [60, 140, 230], [230, 30, 90]]
REMAP = {"classes": [
    {"name": "ground", "color": COLORS[0], "from": ["road", "sidewalk", "terrain"]},
    {"name": "structure", "color": COLORS[1], "from": ["building", "wall", "fence"]},
    {"name": "greenery", "color": COLORS[2], "from": ["vegetation"]},
    {"name": "sky", "color": COLORS[3], "from": ["sky"]},
    {"name": "agent", "color": COLORS[4], "from": ["person", "rider", "car", "truck", "bus", "train", "motorcycle",
                                                   "bicycle"]},
]}


def _ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def _refused(*args: str) -> str:
    """The one-line error of a command that must refuse (exit code 1, no traceback)."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == 1, result.output
    last = result.stderr.strip().splitlines()[-1]  # after what the command said it was doing
    assert last.startswith("Error: ") and "Traceback" not in result.output, result.output
    return " ".join(last.split())


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("folder")
    (base / "remap.json").write_text(json.dumps(REMAP))
    root = base / "mine"
    _ok("data", "synth", str(root), "--layout", "folder", "--classes", str(base / "remap.json"), "--train", "8",
        "--val", "4", "--size", "64x128")
    with unchanged_folder(root, "the 5-class folder data set"):
        yield root


@pytest.fixture(scope="module")
def run(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("run") / "run"
    summary = json.loads(_ok("train", "--data", "folder", "--root", str(dataset), "--crop", "64", "--batch", "4",
                             "--iters", "4", "--val-every", "2", "--log-every", "2", "--workers", "0", "--out",
                             str(out), "--json"))
    assert summary["iteration"] == 4 and len(summary["history"]) == 2
    with unchanged_folder(out, "the 5-class run"):
        yield out


def test_check_sees_a_folder_data_set_and_its_classes(dataset: Path) -> None:
    report = json.loads(_ok("data", "check", str(dataset), "--json"))  # the layout is recognised
    assert report["ok"] and [c["name"] for c in report["classes"]["classes"]] == NAMES
    assert report["splits"]["train"]["labelled"] == 8 and list(report["splits"]["val"]["classes"]) == NAMES


def test_training_follows_the_classes_file(run: Path) -> None:
    config = json.loads((run / "config.json").read_text())
    assert config["num_classes"] == 5 and config["class_names"] == NAMES and config["palette"] == COLORS
    meta = load_checkpoint(run / "checkpoints" / "best.pt")["meta"]
    assert meta["class_names"] == NAMES and meta["palette"] == COLORS
    curve = (run / "curve.svg").read_text()
    assert curve.startswith("<svg") and 'class="loss"' in curve and 'class="miou"' in curve
    assert "curve.svg" in (run / "report.html").read_text()


def test_eval_scores_and_reports_the_data_sets_classes(dataset: Path, run: Path, tmp_path: Path) -> None:
    scores = json.loads(_ok("eval", "--weights", str(run), "--data", "folder", "--root", str(dataset), "--report",
                            str(tmp_path / "report"), "--json", "-"))
    assert list(scores["class_iou"]) == NAMES and scores["label_set"]["kind"] == "classes"
    assert scores["category_iou"] is None and scores["class_iiou"] is None
    assert scores["hard_regions"]["thin_iou"] is None and scores["hard_regions"]["boundary_miou"] is not None
    assert scores["weights"] == {"ref": str(run), "from": "--weights"} and "per_image" not in scores
    page = (tmp_path / "report" / "index.html").read_text()
    assert all(name in page for name in NAMES) and "<svg" in page
    saved = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert len(saved["per_image"]) == 4 and saved["miou"] == scores["miou"]
    assert len(list((tmp_path / "report" / "images").glob("*_truth.png"))) == 4


def test_predict_colours_with_the_files_colours_and_its_masks_score_the_same(
    dataset: Path, run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pred"
    summary = json.loads(_ok("predict", str(dataset / "val" / "images"), "--out", str(out), "--weights", str(run),
                             "--format", "trainid,color", "--json"))
    assert summary["written"] == 4 and summary["weights"]["ref"] == str(run)
    colors = np.concatenate([np.asarray(Image.open(p).convert("RGB")).reshape(-1, 3) for p in (out / "color").glob("*.png")])
    assert {tuple(c) for c in np.unique(colors, axis=0).tolist()} <= {tuple(c) for c in COLORS}
    by_files = json.loads(_ok("eval", "--predictions", str(out / "trainid"), "--data", "folder", "--root",
                              str(dataset), "--json", "-"))
    by_model = json.loads(_ok("eval", "--weights", str(run), "--data", "folder", "--root", str(dataset), "--json", "-"))
    assert by_files["class_iou"] == pytest.approx(by_model["class_iou"], nan_ok=True)


def test_show_hardness_scores_the_folder_masks(dataset: Path, run: Path, tmp_path: Path) -> None:
    report = json.loads(_ok("show-hardness", str(dataset / "val" / "images"), "--out", str(tmp_path / "h"),
                            "--weights", str(run), "--data", "folder", "--root", str(dataset), "--json", "-"))
    assert report["summary"]["images_with_ground_truth"] == 4 and report["summary"]["miou"] is not None


def test_a_model_and_a_data_set_whose_classes_disagree_are_refused(dataset: Path, run: Path, tmp_path: Path,
                                                                   model_dir: Path) -> None:
    words = _refused("eval", "--weights", str(model_dir), "--data", "folder", "--root", str(dataset))
    assert f"The model {model_dir} predicts 19 classes (road," in words and "are 5 (ground, structure" in words
    words = _refused("predict", str(dataset / "val" / "images"), "--out", str(tmp_path / "p"), "--weights", str(run),
                     "--classes", "cityscapes")
    assert "predicts 5 classes (ground" in words and "the cityscapes preset are 19 (road" in words


def _copy(dataset: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(dataset, tmp_path / "copy"))


def test_bad_data_is_refused_naming_the_file(dataset: Path, run: Path, tmp_path: Path) -> None:
    root = _copy(dataset, tmp_path)
    mask = next(iter(sorted((root / "val" / "masks").glob("*.png"))))
    values = np.asarray(Image.open(mask)).copy()
    values[0, 0] = 9
    write_png(mask, values)
    eval_args = ["eval", "--weights", str(run), "--data", "folder", "--root", str(root)]
    words = _refused(*eval_args)
    assert f"{mask} holds the value(s) 9, which are not class indices (0..4" in words
    train = _refused("train", "--data", "folder", "--root", str(root), "--val-split", "val", "--crop", "64",
                     "--batch", "4", "--iters", "1", "--workers", "0", "--out", str(tmp_path / "r"))
    assert f"{mask} holds the value(s) 9" in train
    write_png(mask, np.zeros((32, 128), np.uint8))  # another size
    assert f"{mask} is 128x32 but its image" in " ".join(_problems(root))
    mask.unlink()  # an image without its mask
    assert f"has no mask: add {mask}" in " ".join(_problems(root))
    assert f"needs {mask}" in _refused(*eval_args)
    for image in (root / "val" / "images").iterdir():
        image.unlink()
    assert "The split 'val' is empty" in " ".join(_problems(root))


def _problems(root: Path) -> list[str]:
    """What `fornet data check --json` finds (it exits 1 when it finds anything)."""
    result = runner.invoke(app, ["data", "check", str(root), "--json"])
    assert result.exit_code == 1, result.output
    return json.loads(result.stdout)["problems"]


def test_a_bad_classes_file_is_refused(dataset: Path, tmp_path: Path) -> None:
    root = _copy(dataset, tmp_path)
    (root / "classes.json").write_text(json.dumps({"classes": [{"name": "a", "color": [1, 2, 3]},
                                                               {"name": "a", "color": [4, 5, 6]}]}))
    assert "classes 0 and 1 are both named 'a'" in _refused("data", "check", str(root))
    (root / "classes.json").write_text(json.dumps({"classes": [{"name": "a", "color": [1, 2, 3], "index": 0},
                                                               {"name": "b", "color": [4, 5, 6], "index": 0}]}))
    assert "classes 'a' and 'b' both have index 0" in _refused("train", "--data", "folder", "--root", str(root),
                                                                "--out", str(tmp_path / "r"))
    assert not (tmp_path / "r").exists()  # refused before the run folder was made
    (root / "classes.json").write_text(json.dumps({"classes": [{"name": "a", "color": [1, 2, 256]}]}))
    assert "the color of class 'a' is [1, 2, 256]" in _refused("data", "check", str(root), "--data", "folder")
    (root / "classes.json").unlink()
    assert "has no classes.json or classes.yaml" in _refused("data", "check", str(root), "--data", "folder")
