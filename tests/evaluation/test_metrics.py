"""The official conventions of the pixel- and instance-level scores, on cases small enough to check by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fornet_cli.data.labels import CLASS_NAMES, NAME_TO_LABEL
from fornet_cli.errors import DataError
from fornet_cli.evaluation.counting import (
    AVG_CLASS_SIZE,
    confusion_matrix,
    fast_bincount,
    instance_counts,
    to_label_ids,
)
from fornet_cli.evaluation.metrics import SegmentationMetrics

ROAD, SIDEWALK, CAR, PERSON, RIDER = (NAME_TO_LABEL[n].id for n in ("road", "sidewalk", "car", "person", "rider"))
UNLABELED, CARAVAN, TRUCK = 0, 29, 27


def _scores(pred: np.ndarray, gt: np.ndarray, inst: np.ndarray | None = None):
    m = SegmentationMetrics()
    m.update(torch.from_numpy(pred), torch.from_numpy(gt), None if inst is None else torch.from_numpy(inst))
    return m.compute()


def test_iou_counts_predictions_of_ignored_ids_as_wrong_and_skips_ignored_ground_truth() -> None:
    gt = np.array([[ROAD, ROAD, ROAD, UNLABELED]], dtype=np.uint8)
    pred = np.array([[ROAD, UNLABELED, SIDEWALK, SIDEWALK]], dtype=np.uint8)
    s = _scores(pred, gt)
    # road: TP 1, FN 2 (one predicted as the ignored id 0, one as sidewalk); the unlabeled pixel is not counted
    assert s.class_iou["road"] == pytest.approx(1 / 3)
    # sidewalk: never in the ground truth but predicted on an evaluated pixel -> 0, not NaN
    assert s.class_iou["sidewalk"] == 0.0
    # classes neither present nor predicted on evaluated pixels are undefined and left out of the mean
    assert math.isnan(s.class_iou["car"])
    assert s.miou == pytest.approx((1 / 3 + 0.0) / 2)
    assert s.valid_pixels == 3 and s.pixel_accuracy == pytest.approx(1 / 3)
    assert s.class_accuracy["road"] == pytest.approx(1 / 3) and math.isnan(s.class_accuracy["sidewalk"])
    # category flat: road + sidewalk are one category, so the sidewalk prediction on road is a hit there
    assert s.category_iou["flat"] == pytest.approx(2 / 3)


def test_instance_iou_weights_each_instance_by_the_official_average_size() -> None:
    gt = np.full((10, 20), ROAD, dtype=np.uint8)
    inst = gt.astype(np.int32)
    gt[:, :10] = PERSON
    inst[:, :10] = PERSON * 1000 + 1  # a 100-pixel person
    gt[0, 10:12] = PERSON
    inst[0, 10:12] = PERSON * 1000 + 2  # a 2-pixel person
    pred = gt.copy()
    pred[:4, :10] = RIDER  # 40 of the big person's pixels go to rider (same category)
    pred[0, 11] = ROAD  # half of the small person missed
    s = _scores(pred, gt, inst)
    avg = AVG_CLASS_SIZE["person"]
    tp = 60 * avg / 100 + 1 * avg / 2
    fn = 40 * avg / 100 + 1 * avg / 2
    fp = 0  # no other class was predicted as person
    assert s.class_iiou["person"] == pytest.approx(tp / (tp + fp + fn))
    # rider: no instances but 40 false-positive pixels -> iIoU 0; the plain IoU is 0 too
    assert s.class_iiou["rider"] == 0.0
    # category human: the rider pixels count as found for the person instance
    cat_tp = 100 * avg / 100 + 1 * avg / 2
    cat_fn = 1 * avg / 2
    assert s.category_iiou["human"] == pytest.approx(cat_tp / (cat_tp + cat_fn))
    assert math.isnan(s.class_iiou["car"]) and math.isnan(s.category_iiou["vehicle"])


def test_vehicle_category_counts_caravan_predictions_but_skips_caravan_instances() -> None:
    gt = np.full((4, 8), ROAD, dtype=np.uint8)
    inst = gt.astype(np.int32)
    gt[:2, :4] = CAR
    inst[:2, :4] = CAR * 1000  # instance number 0 is a real instance (value > 1000)
    gt[2:, 4:] = CARAVAN
    inst[2:, 4:] = CARAVAN * 1000 + 1  # an ignored class: skipped
    pred = gt.copy()
    pred[:2, :4] = CARAVAN  # the car predicted as caravan
    s = _scores(pred, gt, inst)
    assert s.class_iiou["car"] == 0.0  # class-level: wrong
    assert s.category_iiou["vehicle"] == pytest.approx(1.0)  # category-level: caravan is a vehicle
    # category IoU (not instance) uses evaluated labels only: caravan predictions are not vehicle hits
    assert s.category_iou["vehicle"] == 0.0


def test_instance_values_up_to_1000_are_not_instances() -> None:
    pred = torch.tensor([[CAR, CAR, ROAD]], dtype=torch.uint8)
    inst = torch.tensor([[1000, CAR, ROAD]], dtype=torch.int32)
    counts = instance_counts(pred, inst)
    assert counts.instances.sum() == 0 and counts.tp_weighted.sum() == 0


def test_train_id_space_gives_the_same_scores_as_label_ids() -> None:
    rng = np.random.default_rng(0)
    gt = rng.choice([*range(19), 255], size=(2, 16, 16)).astype(np.uint8)
    pred = rng.integers(0, 19, size=(2, 16, 16)).astype(np.uint8)
    a, b = SegmentationMetrics(), SegmentationMetrics()
    a.update(torch.from_numpy(pred), torch.from_numpy(gt), space="train_id")
    b.update(to_label_ids(torch.from_numpy(pred)), to_label_ids(torch.from_numpy(gt)))
    assert a.compute().to_dict() == b.compute().to_dict()
    assert a.num_images == 2


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    h=st.integers(1, 12),
    w=st.integers(1, 12),
)
def test_iou_matches_the_textbook_formula_in_train_ids(seed: int, h: int, w: int) -> None:
    rng = np.random.default_rng(seed)
    gt = rng.choice([0, 1, 2, 11, 13, 255], size=(h, w)).astype(np.uint8)
    pred = rng.choice([0, 1, 2, 11, 13], size=(h, w)).astype(np.uint8)
    m = SegmentationMetrics()
    m.update(torch.from_numpy(pred), torch.from_numpy(gt), space="train_id")
    s = m.compute()
    valid = gt != 255
    for c, name in enumerate(CLASS_NAMES):
        inter = np.sum((pred == c) & (gt == c) & valid)
        union = np.sum(((pred == c) | (gt == c)) & valid)
        expected = inter / union if union else float("nan")
        assert (math.isnan(expected) and math.isnan(s.class_iou[name])) or s.class_iou[name] == pytest.approx(expected)


def test_fast_bincount_equals_bincount() -> None:
    codes = torch.randint(0, 1156, (37, 101), dtype=torch.int16)
    codes[:, 10:60] = 5  # long runs, the case the lanes are for
    assert torch.equal(fast_bincount(codes, 1156), torch.bincount(codes.reshape(-1), minlength=1156))
    big = torch.randint(0, 20000, (9, 33), dtype=torch.int16)  # too many bins for lanes in int16
    assert torch.equal(fast_bincount(big, 20000), torch.bincount(big.reshape(-1), minlength=20000))


def test_confusion_matrix_counts_every_pixel() -> None:
    gt = torch.randint(0, 34, (20, 30), dtype=torch.uint8)
    pred = torch.randint(0, 34, (20, 30), dtype=torch.uint8)
    conf = confusion_matrix(pred, gt)
    assert conf.sum() == 600
    assert conf[int(gt[3, 4]), int(pred[3, 4])] >= 1
    expected = np.zeros((34, 34), dtype=np.int64)
    np.add.at(expected, (gt.numpy().ravel(), pred.numpy().ravel()), 1)
    assert np.array_equal(conf.numpy(), expected)


def test_per_image_scores_and_accumulation() -> None:
    m = SegmentationMetrics(per_image=True)
    gt = torch.full((2, 4, 4), ROAD, dtype=torch.uint8)
    pred = gt.clone()
    pred[1, :2] = SIDEWALK
    m.update(pred, gt, names=["a", "b"])
    s = m.compute()
    assert [p.name for p in s.per_image] == ["a", "b"]
    assert s.per_image[0].miou == 1.0 and s.per_image[1].pixel_accuracy == 0.5
    assert s.per_image[1].class_iou["road"] == 0.5
    assert s.class_iou["road"] == pytest.approx(24 / 32)
    assert s.to_dict()["per_image"][1]["class_iou"]["car"] is None
    assert s.class_iiou is None  # no instance ids given


def test_bad_values_raise_data_errors() -> None:
    m = SegmentationMetrics()
    with pytest.raises(DataError, match="not Cityscapes label ids"):
        m.update(torch.tensor([[40]]), torch.tensor([[7]]))
    with pytest.raises(DataError, match="not train ids"):
        m.update(torch.tensor([[19]]), torch.tensor([[0]]), space="train_id")
    with pytest.raises(DataError, match="differs from target shape"):
        m.update(torch.zeros(2, 3, dtype=torch.uint8), torch.zeros(3, 2, dtype=torch.uint8))
    with pytest.raises(DataError, match="not a Cityscapes label id"):
        instance_counts(torch.tensor([[7]], dtype=torch.uint8), torch.tensor([[40001]], dtype=torch.int32))
    with pytest.raises(DataError, match="has no instances"):
        instance_counts(torch.tensor([[7]], dtype=torch.uint8), torch.tensor([[7001]], dtype=torch.int32))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_gives_the_same_scores() -> None:
    rng = np.random.default_rng(1)
    gt = torch.from_numpy(rng.integers(0, 34, (3, 32, 48)).astype(np.uint8))
    pred = torch.from_numpy(rng.integers(0, 34, (3, 32, 48)).astype(np.uint8))
    inst = gt.int() * 1000 + torch.from_numpy(rng.integers(0, 3, (3, 32, 48)).astype(np.int32))
    inst[gt.int() < 24] = gt.int()[gt.int() < 24]
    cpu, gpu = SegmentationMetrics(), SegmentationMetrics()
    cpu.update(pred, gt, inst)
    gpu.update(pred.cuda(), gt.cuda(), inst.cuda())
    a, b = cpu.compute(), gpu.compute()
    assert np.array_equal(a.confusion, b.confusion)
    assert list(a.class_iiou.values()) == pytest.approx(list(b.class_iiou.values()), nan_ok=True)


def test_widen_keeps_every_16_bit_value_and_leaves_other_maps_alone() -> None:
    """The one definition of widening (16-bit PNGs as int32; evaluate.py and metrics.py both use it)."""
    from fornet_cli.evaluation.counting import widen

    ids = torch.from_numpy(np.array([[0, 33, 1000, 26001, 65535]], dtype=np.uint16))
    wide = widen(ids)
    assert wide.dtype == torch.int32 and wide.tolist() == [[0, 33, 1000, 26001, 65535]]
    small = torch.tensor([[1, 2]], dtype=torch.uint8)
    assert widen(small) is small
