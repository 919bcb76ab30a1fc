"""Scores of a plain N-class label set (a folder data set's own classes) next to Cityscapes' label space."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fornet_cli.data.labels import CLASS_NAMES
from fornet_cli.errors import DataError
from fornet_cli.evaluation.evaluate import evaluate_model
from fornet_cli.evaluation.hard_regions import HardRegionConfig, HardRegionMetrics
from fornet_cli.evaluation.metrics import SegmentationMetrics
from fornet_cli.evaluation.space import CITYSCAPES_SPACE, plain_space, space_for

NAMES = ("ground", "wall", "tree")


def _by_hand(pred: np.ndarray, gt: np.ndarray, n: int) -> tuple[list[float], float]:
    """Per-class IoU and pixel accuracy over the pixels whose ground truth is not 255."""
    valid = gt != 255
    ious = []
    for c in range(n):
        inter = np.sum((pred == c) & (gt == c) & valid)
        union = np.sum(((pred == c) & valid) | (gt == c))
        ious.append(inter / union if union else float("nan"))
    return ious, float(np.sum((pred == gt) & valid) / valid.sum())


def test_plain_scores_equal_a_hand_count_and_leave_out_the_cityscapes_only_scores() -> None:
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 3, size=(2, 24, 32)).astype(np.uint8)
    gt[:, :4] = 255  # ignored rows
    pred = rng.integers(0, 3, size=(2, 24, 32)).astype(np.uint8)
    space = plain_space(NAMES)
    metrics = SegmentationMetrics(space=space)
    metrics.update(torch.from_numpy(pred), torch.from_numpy(gt), space="train_id")
    scores = metrics.compute()
    ious, accuracy = _by_hand(pred, gt, 3)
    assert list(scores.class_iou) == list(NAMES)
    assert np.allclose(list(scores.class_iou.values()), ious)
    assert scores.pixel_accuracy == pytest.approx(accuracy)
    assert scores.miou == pytest.approx(np.mean(ious))
    data = scores.to_dict()
    assert data["category_iou"] is None and data["category_miou"] is None and data["class_iiou"] is None
    assert data["label_set"] == {"kind": "classes", "class_names": list(NAMES)}
    assert data["confusion_train_ids"]["rows"] == list(NAMES)
    assert np.asarray(data["confusion_train_ids"]["counts"]).sum() == np.sum(gt != 255)


def test_plain_space_refuses_values_that_are_not_classes() -> None:
    metrics = SegmentationMetrics(space=plain_space(NAMES))
    bad = torch.tensor([[0, 1], [3, 255]], dtype=torch.uint8)
    with pytest.raises(DataError, match=r"values \[3\] that are not class indices \(0..2"):
        metrics.update(bad, bad, space="train_id")


def test_hard_region_scores_in_a_plain_space_have_no_thin_classes() -> None:
    gt = torch.zeros(32, 32, dtype=torch.uint8)
    gt[:, 16:] = 1
    pred = gt.clone()
    pred[:, 14:16] = 1  # a boundary shifted by two pixels
    space = plain_space(NAMES)
    hard = HardRegionMetrics(HardRegionConfig(scale_with_size=False), space)
    hard.update(space.from_train_ids(pred), space.from_train_ids(gt))
    scores = hard.compute()
    assert scores.thin_iou is None and scores.to_dict()["thin_miou"] is None
    assert 0 < scores.boundary_iou["ground"] < 1 and np.isnan(scores.boundary_iou["tree"])


def test_space_for_picks_cityscapes_only_for_its_nineteen_classes_in_order() -> None:
    assert space_for(CLASS_NAMES) is CITYSCAPES_SPACE
    assert not space_for(CLASS_NAMES[::-1]).cityscapes
    assert space_for(NAMES).size == 4


class _Constant(torch.nn.Module):
    """Predicts class 1 everywhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x.shape[0], 3, *x.shape[-2:])
        out[:, 1] = 1.0
        return out


def test_evaluate_model_in_a_plain_space() -> None:
    mask = torch.ones(8, 8, dtype=torch.uint8)
    mask[:2] = 0
    mask[7] = 255
    data = [{"image": torch.zeros(3, 8, 8), "mask": mask, "name": "a"}]
    result = evaluate_model(_Constant(), data, space=plain_space(NAMES), per_image=True)
    assert result.scores.class_iou["wall"] == pytest.approx(40 / 56)
    assert result.scores.class_iou["ground"] == 0.0 and np.isnan(result.scores.class_iou["tree"])
    assert result.to_dict()["source"]["label_set"] == "classes"
    assert result.scores.per_image[0].name == "a"
