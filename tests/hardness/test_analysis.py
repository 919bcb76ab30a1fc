"""Hardness numbers on hand-made cases: selector recall / coverage, the boundary-band baseline (fixed and
area-matched), the set summary, ground-truth lookup and the refusal of models without a selector."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import save_file

from fornet_cli.data.ground_truth import GroundTruthIndex, frame_name, read_ground_truth
from fornet_cli.errors import DataError
from fornet_cli.evaluation.counting import to_label_ids
from fornet_cli.evaluation.hard_regions import HardRegionConfig, HardRegionMetrics
from fornet_cli.hardness.analysis import analyze_image
from fornet_cli.hardness.selector_model import NoSelectorError, load_selector_model, require_selector
from fornet_cli.hardness.summary import area_matched, summarize

ROAD, SIDEWALK, VOID = 7, 8, 0  # label ids (train ids 0, 1, ignored)


def _masks(cells: list[list[tuple[int, int]]], grid: tuple[int, int]) -> torch.Tensor:
    m = torch.zeros(len(cells), *grid)
    for i, region in enumerate(cells):
        for r, c in region:
            m[i, r, c] = 1
    return m


def _first_image() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """4 x 4 pixels on a 2 x 2 grid: 3 errors (2 in the top-left cell), one void pixel."""
    gt = torch.full((4, 4), ROAD, dtype=torch.uint8)
    gt[3, 3] = VOID
    pred = torch.zeros(4, 4, dtype=torch.long)
    pred[0, 0] = pred[0, 1] = pred[2, 2] = 1
    pred[3, 3] = 1  # on the void pixel: not an error
    masks = _masks([[(0, 0)], [(0, 0), (0, 1)]], (2, 2))  # Top 25 %: top-left cell; Top 50 %: top row
    return pred, gt, masks


def test_selector_recall_and_coverage_of_one_image() -> None:
    pred, gt, masks = _first_image()
    z = torch.zeros(2, 2)
    im, maps = analyze_image(pred, z, masks, (0.25, 0.5), gt, name="a")
    assert im.topk is not None and maps is not None
    assert (im.topk.valid, im.topk.errors) == (15, 3)
    assert im.topk.valid_inside.tolist() == [4, 8] and im.topk.errors_inside.tolist() == [2, 2]
    assert im.topk.error_recall == pytest.approx((2 / 3, 2 / 3))
    assert im.topk.coverage == pytest.approx((4 / 15, 8 / 15))
    assert im.area == pytest.approx((4 / 16, 8 / 16))  # all pixels, void included
    assert im.error_rate == pytest.approx(3 / 15)
    # road IoU 12 / 15, sidewalk 0 / 3 (predicted on evaluated pixels only), the rest undefined
    assert im.miou == pytest.approx((12 / 15 + 0) / 2)
    assert im.importance_mean == pytest.approx(0.5)  # sigmoid(0)
    assert int(maps.wrong.sum()) == 3 and not bool(maps.evaluated[3, 3])


def test_the_same_counts_as_the_evaluation_metrics() -> None:
    """Cross-check against HardRegionMetrics.update_selector (what `fornet eval` reports) on random maps."""
    g = torch.Generator().manual_seed(1)
    pred = torch.randint(0, 3, (2, 24, 40), generator=g)
    gt = torch.tensor([ROAD, SIDEWALK, 11, VOID])[torch.randint(0, 4, (2, 24, 40), generator=g)].to(torch.uint8)
    z = torch.randn(2, 3, 5, generator=g)
    from fornet_cli.model.topk import topk_masks

    masks = topk_masks(z[:, None], (0.2, 0.6))
    reference = HardRegionMetrics(HardRegionConfig())
    images = []
    for i in range(2):
        reference.update_selector(to_label_ids(pred[i]), gt[i], masks[i : i + 1], (0.2, 0.6))
        images.append(analyze_image(pred[i], z[i], masks[i], (0.2, 0.6), gt[i])[0])
    ours = summarize(images, (0.2, 0.6))
    ref = reference.compute().selector
    assert ours.selector is not None and ref is not None
    assert ours.selector.error_recall == pytest.approx(ref.error_recall, abs=1e-12)
    assert ours.selector.coverage == pytest.approx(ref.coverage, abs=1e-12)
    assert ours.selector.lift == pytest.approx(ref.lift, abs=1e-12)


def _striped() -> tuple[torch.Tensor, torch.Tensor]:
    """4 x 10: predicted road | sidewalk at column 5; wrong at columns 4 and 8 (8 of 40 pixels)."""
    pred = torch.zeros(4, 10, dtype=torch.long)
    pred[:, 5:] = 1
    gt = torch.full((4, 10), ROAD, dtype=torch.uint8)
    gt[:, 4:] = SIDEWALK
    gt[:, 8] = ROAD
    return pred, gt


def test_band_baseline_uses_the_predicted_boundaries_only() -> None:
    pred, gt = _striped()
    masks = _masks([[(0, 0)]], (1, 2))
    im, _ = analyze_image(pred, torch.zeros(1, 2), masks, (0.5,), gt, curve_widths=(1, 2, 3, 4, 5))
    assert im.curve is not None and im.band is not None and im.gt_band is not None
    # predicted edges: columns 4 and 5; a band of width w adds a column on each side per step
    assert im.curve.coverage == pytest.approx((0.2, 0.4, 0.6, 0.8, 1.0))
    assert im.curve.error_recall == pytest.approx((0.5, 0.5, 0.5, 1.0, 1.0))
    # fixed d = 12 px at 1024 x 2048 is 1 px at 4 x 10
    assert im.band_width == 1
    assert (im.band.coverage[0], im.band.error_recall[0]) == pytest.approx((0.2, 0.5))
    # ground-truth edges: columns 3-4 and 7-9, where both errors are
    assert (im.gt_band.coverage[0], im.gt_band.error_recall[0]) == pytest.approx((0.5, 1.0))
    # Top 50 % = the left cell, columns 0-4: half of the ground-truth band (columns 3, 4 of 3, 4, 7, 8, 9)
    assert im.gt_band_inside == pytest.approx((2 / 5,))
    assert im.topk is not None and im.topk.error_recall == pytest.approx((0.5,))


def test_area_matched_band_interpolates_between_nested_bands() -> None:
    widths, cov, rec = (1, 2, 3, 4, 5), (0.2, 0.4, 0.6, 0.8, 1.0), (0.5, 0.5, 0.5, 1.0, 1.0)
    m = area_matched(widths, cov, rec, 0.7)
    assert m is not None
    assert (m.coverage, m.error_recall, m.width) == pytest.approx((0.7, 0.75, 3.5))
    assert (m.width_low, m.width_high, m.mix) == (3, 4, pytest.approx(0.5))
    low = area_matched(widths, cov, rec, 0.1)  # between the empty band and width 1
    assert low is not None and (low.error_recall, low.width, low.width_low) == pytest.approx((0.25, 0.5, 0))
    exact = area_matched(widths, cov, rec, 0.4)
    assert exact is not None and exact.error_recall == pytest.approx(0.5) and exact.width == pytest.approx(2.0)
    assert area_matched((1, 2), (0.2, 0.4), (0.5, 0.5), 0.5) is None  # the widest band is too small
    assert area_matched(widths, cov, rec, float("nan")) is None


def test_summary_sums_images_and_keeps_unlabelled_ones_out_of_recall() -> None:
    pred, gt, masks = _first_image()
    first, _ = analyze_image(pred, torch.zeros(2, 2), masks, (0.25, 0.5), gt)
    pred2 = torch.zeros(4, 4, dtype=torch.long)
    pred2[3, 0] = pred2[3, 1] = 1  # both errors in the bottom-left cell
    second, _ = analyze_image(
        pred2, torch.zeros(2, 2), _masks([[(1, 0)], [(1, 0), (1, 1)]], (2, 2)), (0.25, 0.5),
        torch.full((4, 4), ROAD, dtype=torch.uint8),
    )
    unlabelled, maps = analyze_image(
        torch.zeros(4, 8, dtype=torch.long), torch.ones(2, 4), _masks([[(0, 0), (0, 1)], [(0, 0), (0, 1), (0, 2), (0, 3)]], (2, 4)),
        (0.25, 0.5),
    )
    assert maps is None and not unlabelled.has_gt and unlabelled.area == pytest.approx((0.25, 0.5))
    s = summarize([first, second, unlabelled], (0.25, 0.5))
    assert (s.images, s.images_with_gt) == (3, 2)
    assert s.selector is not None
    assert (s.selector.valid, s.selector.errors) == (31, 5)
    assert s.selector.error_recall == pytest.approx((4 / 5, 4 / 5))
    assert s.selector.coverage == pytest.approx((8 / 31, 16 / 31))
    assert s.area == pytest.approx(((4 + 4 + 8) / 64, (8 + 8 + 16) / 64))
    sig1 = float(torch.sigmoid(torch.tensor(1.0)))
    assert s.hardness == pytest.approx((0.5 + 0.5 + sig1) / 3)
    data = s.to_dict()
    json.dumps(data, allow_nan=False)  # NaN never reaches the JSON
    assert data["selector"][0]["error_recall"] == pytest.approx(0.8)
    assert unlabelled.to_dict()["miou"] is None and unlabelled.to_dict()["topk"][0] == {"ratio": 0.25, "area": 0.25}


def test_summary_without_ground_truth() -> None:
    im, _ = analyze_image(torch.zeros(4, 4, dtype=torch.long), torch.zeros(2, 2), _masks([[(0, 0)]], (2, 2)), (0.25,))
    s = summarize([im], (0.25,))
    assert s.selector is None and s.images_with_gt == 0
    d = s.to_dict()
    assert d["band_fixed"] is None and d["miou"] is None and d["selector"] == [{"ratio": 0.25, "area": 0.25}]


# --------------------------------------------------------------------------------------------------------
# Ground truth lookup
# --------------------------------------------------------------------------------------------------------


def _write_label(path: Path, value: int, size: tuple[int, int] = (4, 6)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size, value, dtype=np.uint8)).save(path)


def test_ground_truth_next_to_cityscapes_images_and_under_a_root(tmp_path: Path) -> None:
    root = tmp_path / "cs"
    image = root / "leftImg8bit" / "val" / "town" / "town_000001_000019_leftImg8bit.png"
    image.parent.mkdir(parents=True)
    image.touch()
    label = root / "gtFine" / "val" / "town" / "town_000001_000019_gtFine_labelIds.png"
    _write_label(label, ROAD)
    assert frame_name(image) == "town_000001_000019"
    assert GroundTruthIndex().find(image) == label
    assert GroundTruthIndex().find(tmp_path / "elsewhere.png") is None
    # a copy of the image outside the layout finds its labels through --gt
    loose = tmp_path / "loose" / image.name
    assert GroundTruthIndex(root).find(loose) == label
    assert GroundTruthIndex(root).find(tmp_path / "other_leftImg8bit.png") is None
    # only trainIds: used, mapped back to label ids (255 -> unlabeled)
    train = root / "gtFine" / "val" / "town" / "town_000002_000019_gtFine_labelTrainIds.png"
    _write_label(train, 255)
    found = GroundTruthIndex(root).find(tmp_path / "town_000002_000019_leftImg8bit.jpg")
    assert found == train
    assert read_ground_truth(train, (4, 6, 3), image).max() == 0
    assert read_ground_truth(label, (4, 6, 3), image).max() == ROAD
    with pytest.raises(DataError, match="6x4 but its image"):
        read_ground_truth(label, (5, 6, 3), image)


def test_ground_truth_root_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        GroundTruthIndex(tmp_path / "missing")
    (tmp_path / "cs" / "leftImg8bit").mkdir(parents=True)
    with pytest.raises(DataError, match="no gtFine/ folder"):
        GroundTruthIndex(tmp_path / "cs")
    for split in ("train", "val"):
        _write_label(tmp_path / "cs" / "gtFine" / split / "c" / "c_0_0_gtFine_labelIds.png", ROAD)
    with pytest.raises(DataError, match="several ground-truth files"):
        GroundTruthIndex(tmp_path / "cs").find(Path("c_0_0_leftImg8bit.png"))


# --------------------------------------------------------------------------------------------------------
# Models without a selector
# --------------------------------------------------------------------------------------------------------


def test_models_without_a_selector_are_refused(tmp_path: Path) -> None:
    conv = torch.nn.Conv2d(3, 19, 1)
    with pytest.raises(NoSelectorError, match="needs a FoR-Net model with a selector"):
        require_selector(conv, "a 1x1 conv")
    (tmp_path / "segformer").mkdir()
    (tmp_path / "segformer" / "config.json").write_text(
        json.dumps({"architectures": ["SegformerForSemanticSegmentation"], "model_type": "segformer"})
    )
    save_file(conv.state_dict(), str(tmp_path / "segformer" / "model.safetensors"))
    with pytest.raises(NoSelectorError, match="SegformerForSemanticSegmentation"):
        load_selector_model(tmp_path / "segformer")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(conv, (torch.randn(1, 3, 8, 8),), str(tmp_path / "model.onnx"), dynamo=False)
    with pytest.raises(NoSelectorError, match=r"exported model \(\.onnx\)"):
        load_selector_model(tmp_path / "model.onnx")


def test_band_curve_equals_boundary_bands() -> None:
    """The incremental, bit-packed curve against morphology.boundary_band width by width (odd widths: the
    packed words have a partial last word)."""
    from fornet_cli.evaluation.morphology import boundary_band
    from fornet_cli.hardness.analysis import band_curve

    g = torch.Generator().manual_seed(3)
    pred = torch.randint(0, 3, (6, 9), generator=g).repeat_interleave(5, 0).repeat_interleave(9, 1)[:29, :77]
    valid = torch.rand(29, 77, generator=g) > 0.1
    wrong = torch.rand(29, 77, generator=g) > 0.7
    widths = (1, 2, 3, 5, 8, 13, 40)
    curve = band_curve(pred, valid, wrong, widths)
    for j, w in enumerate(widths):
        band = boundary_band(pred.to(torch.uint8), w)
        assert curve.valid_inside[j] == int((band & valid).sum())
        assert curve.errors_inside[j] == int((band & valid & wrong).sum())
    assert curve.valid == int(valid.sum()) and curve.errors == int((valid & wrong).sum())


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    h=st.integers(1, 20),
    w=st.integers(1, 20),
    classes=st.integers(1, 3),
    widths=st.lists(st.integers(1, 50), min_size=0, max_size=6).map(sorted),
)
def test_band_curve_matches_brute_force(seed: int, h: int, w: int, classes: int, widths: list[int]) -> None:
    """The distance-transform curve against bands from the definition: random predictions (one class: no
    edges at all), void pixels, edges on the image border, widths up to 50 > the image."""
    from fornet_cli.hardness.analysis import band_curve

    rng = np.random.default_rng(seed)
    pred = rng.integers(0, classes, (h, w)).astype(np.uint8)
    valid = rng.random((h, w)) < 0.8
    wrong = rng.random((h, w)) < 0.3
    edge = np.zeros((h, w), dtype=bool)
    for i in range(h):
        for j in range(w):
            edge[i, j] = len(np.unique(pred[max(0, i - 1) : i + 2, max(0, j - 1) : j + 2])) > 1
    curve = band_curve(torch.from_numpy(pred), torch.from_numpy(valid), torch.from_numpy(wrong), widths)
    for k, width in enumerate(widths):
        r = width - 1
        band = np.array([[edge[max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1].any() for j in range(w)]
                         for i in range(h)], dtype=bool)
        assert curve.valid_inside[k] == (band & valid).sum()
        assert curve.errors_inside[k] == (band & valid & wrong).sum()
    assert len(curve.valid_inside) == len(widths) == len(curve.errors_inside)
    assert curve.valid == valid.sum() and curve.errors == (valid & wrong).sum()


def test_the_ceiling_and_the_gap_rule_take_as_many_cells_as_the_selector() -> None:
    # errors: 2 in the top-left cell, 1 in the bottom-right cell. Selector: Top 25 % = the bottom-left cell
    # (no errors), Top 50 % = the bottom row (1 error).
    pred, gt, _ = _first_image()
    masks = _masks([[(1, 0)], [(1, 0), (1, 1)]], (2, 2))
    gap = torch.full((4, 4), 5.0)
    gap[2:, 2:] = 0.1  # the least sure cell: bottom-right (1 error)
    im, _ = analyze_image(pred, torch.zeros(2, 2), masks, (0.25, 0.5), gt, gap=gap)
    assert im.topk.errors_inside.tolist() == [0, 1]
    assert im.ceiling.errors_inside.tolist() == [2, 3]  # top-left, then the bottom-right cell
    assert im.gap.errors_inside.tolist()[0] == 1
    assert all(c >= s for c, s in zip(im.ceiling.error_recall, im.topk.error_recall))
    row = summarize([im], (0.25, 0.5)).to_dict()["selector"][1]
    assert row["ceiling_error_recall"] == pytest.approx(1.0) and row["error_recall"] == pytest.approx(1 / 3)
    assert row["share_of_ceiling"] == pytest.approx(1 / 3) and row["gap_error_recall"] is not None


def test_the_band_cells_take_the_cells_richest_in_predicted_boundaries() -> None:
    # 16 x 16 on a 2 x 2 grid. The prediction's only boundary surrounds a block in the top-right cell (its
    # lower edge just reaches the bottom-right cell); 3 errors lie in the top-right cell, 5 in the bottom-left.
    pred = torch.zeros(16, 16, dtype=torch.long)
    pred[0:6, 11:16] = 1
    gt = to_label_ids(pred).to(torch.uint8)
    gt[0, 13] = gt[1, 13] = gt[2, 13] = ROAD
    gt[12, 0:5] = SIDEWALK
    masks = _masks([[(1, 1)], [(1, 1), (1, 0)]], (2, 2))  # the selector: bottom-right, then the bottom row
    im, _ = analyze_image(pred, torch.zeros(2, 2), masks, (0.25, 0.5), gt)
    assert im.topk.errors_inside.tolist() == [0, 5]
    assert im.band_cells.errors_inside.tolist()[0] == 3  # Top 25 %: the top-right cell only
    assert im.band_cells.valid_inside.tolist() == im.topk.valid_inside.tolist()  # as many cells (no void here)
    row = summarize([im], (0.25, 0.5)).to_dict()["selector"][0]
    assert row["band_cells_error_recall"] == pytest.approx(3 / 8) and row["error_recall"] == 0.0
