"""Hard-region scores on hand-made images with known answers (definitions: docs/METRICS.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from fornet_cli.data.labels import NAME_TO_LABEL, THIN_CLASS_NAMES
from fornet_cli.errors import ConfigError
from fornet_cli.evaluation.counting import confusion_matrix
from fornet_cli.evaluation.hard_regions import HardRegionConfig, HardRegionMetrics, scale_width
from fornet_cli.evaluation.morphology import boundary_band, dilate, dilate_elementwise, distance_levels, edges

A, B = NAME_TO_LABEL["road"].id, NAME_TO_LABEL["sidewalk"].id
VOID = 0
UNSCALED = HardRegionConfig(boundary_width=1, trimap_widths=(1, 2), scale_with_size=False)


def _split(h: int = 4, w: int = 8, at: int = 4) -> torch.Tensor:
    """Columns < at are road, the rest sidewalk."""
    x = torch.full((h, w), B, dtype=torch.uint8)
    x[:, :at] = A
    return x


def _cols(mask: torch.Tensor) -> list[int]:
    """The columns that are set (every row must agree)."""
    assert torch.equal(mask, mask[:1].expand_as(mask))
    return torch.nonzero(mask[0]).flatten().tolist()


def test_edges_are_two_pixels_wide_and_bands_grow_by_the_width() -> None:
    gt = _split()
    assert _cols(edges(gt)) == [3, 4]
    assert _cols(boundary_band(gt, 1)) == [3, 4]
    assert _cols(boundary_band(gt, 3)) == [1, 2, 3, 4, 5, 6]
    levels = distance_levels(gt, (1, 2, 3))
    assert levels[0].tolist() == [3, 2, 1, 0, 0, 1, 2, 3]


def test_void_makes_no_edges_but_classes_across_it_do() -> None:
    gt = _split(w=9, at=4)
    gt[:, 4] = VOID  # road | void | sidewalk
    valid = gt != VOID
    # col 3 sees road and void only; the void pixel in col 4 sees road and sidewalk
    assert _cols(edges(gt, valid)) == [4]
    assert _cols(boundary_band(gt, 2, valid)) == [3, 4, 5]
    wide = gt.clone()
    wide[:, 3:6] = VOID  # a three-pixel void gap: no pixel sees both classes
    assert _cols(edges(wide, wide != VOID)) == []
    # without a validity mask void is a label like any other
    assert _cols(edges(gt)) == [3, 4, 5]


def _naive_band(labels: np.ndarray, valid: np.ndarray, width: int) -> np.ndarray:
    h, w = labels.shape
    edge = np.zeros((h, w), dtype=bool)
    for i in range(h):
        for j in range(w):
            rows, cols = slice(max(0, i - 1), i + 2), slice(max(0, j - 1), j + 2)
            win = labels[rows, cols][valid[rows, cols]]
            edge[i, j] = len(set(win.tolist())) > 1
    r = width - 1
    out = np.zeros_like(edge)
    for i in range(h):
        for j in range(w):
            out[i, j] = edge[max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1].any()
    return out


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), h=st.integers(1, 13), w=st.integers(1, 13), width=st.integers(1, 6))
def test_bands_match_the_definition(seed: int, h: int, w: int, width: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, (h, w)).astype(np.uint8)
    valid = rng.random((h, w)) < 0.7
    band = boundary_band(torch.from_numpy(labels), width, torch.from_numpy(valid))
    assert np.array_equal(band.numpy(), _naive_band(labels, valid, width))
    widths = (width, width + 1, 2 * width + 3)
    levels = distance_levels(torch.from_numpy(labels), widths, torch.from_numpy(valid))
    expected = sum((~_naive_band(labels, valid, k)).astype(np.uint8) for k in widths)
    assert np.array_equal(levels.numpy(), expected)
    # the element-wise path (GPUs, batches) gives the same levels as the bit-packed CPU path
    batched = distance_levels(torch.from_numpy(labels)[None], widths, torch.from_numpy(valid)[None])
    assert np.array_equal(batched[0].numpy(), expected)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    h=st.integers(1, 40),
    w=st.integers(1, 200),
    radius=st.integers(0, 80),
    density=st.sampled_from([0.002, 0.05, 0.5]),
)
def test_both_dilations_match_max_pool(seed: int, h: int, w: int, radius: int, density: float) -> None:
    """The bit-packed CPU dilation (words of 64 pixels, shifts across words) and the element-wise one."""
    mask = torch.from_numpy(np.random.default_rng(seed).random((h, w)) < density)
    r = min(radius, 2 * max(h, w))  # max_pool2d needs padding <= kernel / 2, which holds for any r
    reference = F.max_pool2d(mask[None, None].float(), 2 * r + 1, 1, r)[0, 0] > 0 if r else mask
    assert torch.equal(dilate(mask, r), reference)
    assert torch.equal(dilate_elementwise(mask, r), reference)


def test_boundary_iou_of_a_shifted_border() -> None:
    gt = _split()
    pred = gt.clone()
    pred[:, 5] = A  # the prediction adds a road column inside the sidewalk
    m = HardRegionMetrics(UNSCALED)
    conf = m.update(pred, gt)
    assert torch.equal(conf, confusion_matrix(pred, gt))
    s = m.compute()
    # gt edges: cols 3, 4; prediction edges: cols 3, 4, 5, 6.
    # road: G = {3}, P = {3, 5} -> 1/2; sidewalk: G = {4}, P = {4, 6} -> 1/2
    assert s.boundary_iou["road"] == pytest.approx(0.5)
    assert s.boundary_iou["sidewalk"] == pytest.approx(0.5)
    assert s.boundary_miou == pytest.approx(0.5)
    assert math.isnan(s.boundary_iou["car"])
    # trimap: band 1 = cols 3, 4, all right; band 2 = cols 2..5: road 8/12, sidewalk 4/8
    assert s.trimap_miou[1.0] == pytest.approx(1.0)
    assert s.trimap_miou[2.0] == pytest.approx((8 / 12 + 4 / 8) / 2)
    assert s.trimap_pixel_share[1.0] == pytest.approx(8 / 32) and s.trimap_pixel_share[2.0] == pytest.approx(16 / 32)


def test_boundary_iou_is_zero_when_the_border_moves_by_the_band_width() -> None:
    gt = _split(w=10, at=5)
    pred = _split(w=10, at=7)
    m = HardRegionMetrics(UNSCALED)
    m.update(pred, gt)
    s = m.compute()
    assert s.boundary_iou["road"] == 0.0 and s.boundary_iou["sidewalk"] == 0.0
    wide = HardRegionMetrics(HardRegionConfig(boundary_width=3, trimap_widths=(3,), scale_with_size=False))
    wide.update(pred, gt)
    # d = 3: road G = {2, 3, 4}, P = {4, 5, 6} -> 1/5; sidewalk G = {5, 6, 7}, P = {7, 8, 9} -> 1/5
    assert wide.compute().boundary_iou["road"] == pytest.approx(1 / 5)
    assert wide.compute().boundary_iou["sidewalk"] == pytest.approx(1 / 5)
    # one pixel off halves the score at d = 3 (docs/METRICS.md)
    one = HardRegionMetrics(HardRegionConfig(boundary_width=3, trimap_widths=(3,), scale_with_size=False))
    one.update(_split(w=10, at=6), gt)
    assert one.compute().boundary_miou == pytest.approx(1 / 2)


def test_ignored_ground_truth_is_never_scored() -> None:
    gt = _split()
    gt[:, 0] = VOID
    pred = gt.clone()
    pred[:, 0] = B  # a wrong label on void pixels changes nothing
    a, b = HardRegionMetrics(UNSCALED), HardRegionMetrics(UNSCALED)
    a.update(gt, gt)
    b.update(pred, gt)
    assert a.compute().to_dict() == b.compute().to_dict()
    assert a.compute().boundary_miou == 1.0


def test_thin_classes_are_the_thin_class_ious() -> None:
    pole, sign = NAME_TO_LABEL["pole"].id, NAME_TO_LABEL["traffic sign"].id
    gt = torch.full((4, 8), A, dtype=torch.uint8)
    gt[:, 2] = pole
    gt[:, 6] = sign
    pred = gt.clone()
    pred[:2, 2] = A  # half the pole missed
    m = HardRegionMetrics(UNSCALED)
    m.update(pred, gt)
    s = m.compute()
    assert tuple(s.thin_iou) == THIN_CLASS_NAMES
    assert s.thin_iou["pole"] == pytest.approx(0.5) and s.thin_iou["traffic sign"] == 1.0
    assert s.thin_miou == pytest.approx(0.75)  # the other thin classes are undefined here


def test_selector_error_recall_and_coverage() -> None:
    gt = torch.full((1, 4, 4), A, dtype=torch.uint8)
    gt[0, 3, 3] = VOID
    pred = gt.clone()
    pred[0, 0, 0] = B  # error inside the first region
    pred[0, 0, 1] = B  # error inside the first region
    pred[0, 2, 2] = B  # error outside it
    masks = torch.zeros(1, 2, 2, 2)  # a 2 x 2 grid, upsampled x2 to the image
    masks[0, 0, 0, 0] = 1  # region 1: the top-left 2 x 2 pixels
    masks[0, 1, 0] = 1  # region 2: the top half
    m = HardRegionMetrics(UNSCALED)
    m.update_selector(pred, gt, masks, (0.25, 0.5))
    s = m.compute().selector
    assert s.error_recall == pytest.approx((2 / 3, 2 / 3))
    assert s.coverage == pytest.approx((4 / 15, 8 / 15))
    assert s.error_rate == pytest.approx(3 / 15)
    assert s.error_rate_inside == pytest.approx((2 / 4, 2 / 8))
    assert s.lift == pytest.approx((2 / 3 / (4 / 15), 2 / 3 / (8 / 15)))
    with pytest.raises(ConfigError, match="ratios changed"):
        m.update_selector(pred, gt, masks, (0.1, 0.5))


def test_widths_scale_with_the_image_size() -> None:
    assert scale_width(3, 1024, 2048) == 3
    assert scale_width(3, 512, 1024) == 2  # 1.5 rounds half up
    assert scale_width(3, 256, 512) == 1
    assert scale_width(24, 2048, 4096) == 48
    cfg = HardRegionConfig()
    assert cfg.thresholds == (3.0, 6.0, 12.0, 24.0)
    assert cfg.pixel_radii(512, 1024) == (2, 3, 6, 12)
    assert HardRegionConfig(boundary_width=5, scale_with_size=False).pixel_radii(10, 10) == (3, 5, 6, 12, 24)
    m = HardRegionMetrics()
    m.update(_split(64, 128, 60), _split(64, 128, 64))
    assert m.compute().pixel_radii == {"64x128": (1, 1, 1, 2)}


@pytest.mark.parametrize("bad", [{"boundary_width": 0}, {"trimap_widths": (3, -1)}, {"boundary_width": float("nan")}])
def test_config_rejects_bad_widths(bad: dict) -> None:
    with pytest.raises(ConfigError, match="positive"):
        HardRegionConfig(**bad)
