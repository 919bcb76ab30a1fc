"""fornet's scores equal the official cityscapesscripts evaluator's, number for number."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
from eval_test_data import write_dataset

from fornet_cli.evaluation.evaluate import EvaluationResult, evaluate_predictions

TOL = 1e-6
# torchvision 0.29 deprecates its PNG decoder (fornet falls back to Pillow when it goes)
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities of TorchVision")


def _same(ours: float | None, theirs: float | None) -> bool:
    ours = None if ours is None or math.isnan(ours) else ours
    theirs = None if theirs is None or math.isnan(theirs) else theirs
    if ours is None or theirs is None:
        return ours is None and theirs is None
    return abs(ours - theirs) <= TOL


def assert_matches_official(result: EvaluationResult, official: dict) -> None:
    """Every class, instance, category and average score of the official result, to 1e-6."""
    s = result.scores
    checks = [
        ("classScores", s.class_iou),
        ("classInstScores", s.class_iiou),
        ("categoryScores", s.category_iou),
        ("categoryInstScores", s.category_iiou),
    ]
    compared = 0
    for key, ours in checks:
        assert ours is not None, key
        for name, theirs in official[key].items():
            if name in ours:
                assert _same(ours[name], theirs), (key, name, ours[name], theirs)
                compared += 1
            else:  # ignored labels and the void category: the official score is undefined too
                assert theirs is None or math.isnan(theirs), (key, name, theirs)
    averages = {
        "averageScoreClasses": s.miou,
        "averageScoreInstClasses": s.miiou,
        "averageScoreCategories": s.category_miou,
        "averageScoreInstCategories": s.category_miiou,
    }
    for key, ours in averages.items():
        assert _same(ours, official[key]), (key, ours, official[key])
    assert compared == 19 + 8 + 7 + 2


def test_reproduces_reference_scores_of_real_predictions(real_fixtures: Path) -> None:
    root = real_fixtures / "cityscapes-eval"
    if not root.is_dir():
        pytest.skip(f"{root} is missing")
    reference = json.loads((root / "reference_scores.json").read_text())
    result = evaluate_predictions(root / "predictions" / "hrnet_ocr_w48", root, "val")
    assert result.scores.num_images == 2
    assert_matches_official(result, reference)
    # defined scores really are there (not everything None)
    assert result.scores.class_iou["road"] == pytest.approx(0.9707847502552666, abs=TOL)
    assert result.scores.category_iiou["vehicle"] == pytest.approx(0.8799089239192956, abs=TOL)


def _official(pred_files: list[str], gt_files: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    ev = pytest.importorskip("cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling")
    monkeypatch.setattr(np, "in1d", np.isin, raising=False)  # removed in NumPy 2.4, used by cityscapesscripts
    args = copy.copy(ev.args)
    args.evalInstLevelScore = True
    args.evalPixelAccuracy = False
    args.quiet = True
    args.JSONOutput = False
    args.exportFile = str(tmp_path / "official.json")
    args.colorized = False
    return ev.evaluateImgLists(pred_files, gt_files, args)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_generated_ground_truth_matches_official_evaluator(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gt_root, pred_dir, keys = write_dataset(tmp_path, n_images=4, size=(48, 96), seed=seed)
    gt_files = sorted(str(p) for p in gt_root.rglob("*_gtFine_labelIds.png"))
    pred_files = [str(next(pred_dir.rglob(Path(g).name.split("_gtFine")[0] + "*.png"))) for g in gt_files]
    official = _official(pred_files, gt_files, tmp_path, monkeypatch)
    result = evaluate_predictions(pred_dir, gt_root, "val", workers=2)
    assert result.scores.num_images == len(keys)
    assert_matches_official(result, official)
    # the official matrix counts every pixel; ours is the same matrix
    assert np.array_equal(result.scores.confusion, np.array(official["confMatrix"], dtype=np.int64))


def test_single_image_and_threads_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gt_root, pred_dir, keys = write_dataset(tmp_path, n_images=3, size=(40, 72), seed=5, n_instances=10)
    one = evaluate_predictions(pred_dir, gt_root, "val", workers=1, per_image=True)
    many = evaluate_predictions(pred_dir, gt_root, "val", workers=3)
    assert one.to_dict()["class_iou"] == many.to_dict()["class_iou"]
    assert one.to_dict()["class_iiou"] == pytest.approx(many.to_dict()["class_iiou"], abs=1e-12)
    # per-image scores: each equals evaluating that image on its own with the official evaluator
    first = one.scores.per_image[0]
    gt = next(gt_root.rglob(f"{first.name}_gtFine_labelIds.png"))
    pred = next(pred_dir.rglob(f"{first.name}*.png"))
    official = _official([str(pred)], [str(gt)], tmp_path, monkeypatch)
    for name, value in first.class_iou.items():
        assert _same(value, official["classScores"][name]), name
