"""Evaluating a predictions folder (matching, errors) and a model over a dataset (same numbers)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from eval_test_data import write_dataset, write_png
from PIL import Image
from torch import nn

import fornet_cli
from fornet_cli.data.labels import ID_TO_TRAIN_ID, TRAIN_ID_TO_ID
from fornet_cli.data.prediction_files import PredictionIndex, find_ground_truth, match_predictions
from fornet_cli.errors import DataError
from fornet_cli.evaluation.evaluate import evaluate_model, evaluate_predictions
from fornet_cli.evaluation.hard_regions import HardRegionConfig
from fornet_cli.inference.predictor import InferenceConfig

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities of TorchVision")


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    return write_dataset(tmp_path, n_images=3, size=(32, 64), seed=3)


def _pred_path(pred_dir: Path, key: str) -> Path:
    return next(pred_dir.rglob(f"{key}*.png"))


def test_matching_follows_the_official_pattern(tmp_path: Path) -> None:
    for name in ("a/x_000001_000002_leftImg8bit.png", "x_000001_000003.png", "b/c/x_000001_0000021.png", "x_1.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    index = PredictionIndex(tmp_path)
    assert len(index) == 3
    # like fnmatch("<key>*.png"): a name that merely starts with the key matches too
    found = sorted(p.name for p in index.matches("x_000001_000002"))
    assert found == ["x_000001_0000021.png", "x_000001_000002_leftImg8bit.png"]
    assert [p.name for p in index.matches("x_000001_000003")] == ["x_000001_000003.png"]
    assert index.matches("y_000001_000002") == []


def test_missing_predictions_are_listed(dataset: tuple[Path, Path, list[str]]) -> None:
    gt_root, pred_dir, keys = dataset
    _pred_path(pred_dir, keys[1]).unlink()
    with pytest.raises(DataError, match=rf"No prediction for 1 of 3 ground-truth images \({keys[1]}\)") as info:
        evaluate_predictions(pred_dir, gt_root, "val")
    assert "<city>_<seq>_<frame>*.png" in str(info.value)


def test_several_predictions_for_one_image_are_refused(dataset: tuple[Path, Path, list[str]]) -> None:
    gt_root, pred_dir, keys = dataset
    shutil.copy(_pred_path(pred_dir, keys[0]), pred_dir / f"{keys[0]}_color.png")
    with pytest.raises(DataError, match=f"several predictions, e.g. {keys[0]}"):
        evaluate_predictions(pred_dir, gt_root, "val")


def test_wrong_size_names_the_file_and_both_sizes(dataset: tuple[Path, Path, list[str]]) -> None:
    gt_root, pred_dir, keys = dataset
    path = _pred_path(pred_dir, keys[2])
    write_png(path, np.full((16, 32), 7, dtype=np.uint8))
    with pytest.raises(DataError, match=r"is 32x16 \(width x height\) but its ground truth .* is 64x32") as info:
        evaluate_predictions(pred_dir, gt_root, "val")
    assert str(path) in str(info.value)


def test_train_ids_with_255_are_recognised(dataset: tuple[Path, Path, list[str]]) -> None:
    gt_root, pred_dir, keys = dataset
    gt = np.array(Image.open(next(gt_root.rglob(f"{keys[0]}_gtFine_labelIds.png"))))
    write_png(_pred_path(pred_dir, keys[0]), ID_TO_TRAIN_ID[gt])  # trainIds with 255 for ignore
    message = "values 255, which are not Cityscapes labelIds. This looks like trainIds"
    with pytest.raises(DataError, match=message) as info:
        evaluate_predictions(pred_dir, gt_root, "val")
    assert "fornet predict --format labelid" in str(info.value)


def test_train_ids_without_255_are_recognised_by_their_scores(tmp_path: Path) -> None:
    gt = np.full((16, 32), 7, dtype=np.uint8)  # road
    gt[:, 16:] = 11  # building
    gt[:4] = 23  # sky
    write_png(tmp_path / "gt/gtFine/val/x/x_000000_000000_gtFine_labelIds.png", gt)
    train = ID_TO_TRAIN_ID[gt]  # 0, 2, 10: all below 19, so every value is also a valid labelId
    write_png(tmp_path / "pred/x_000000_000000_leftImg8bit.png", train)
    with pytest.raises(DataError, match="100% pixel accuracy read as trainIds but 0% read as labelIds"):
        evaluate_predictions(tmp_path / "pred", tmp_path / "gt", "val")
    # the same map as labelIds is fine
    write_png(tmp_path / "pred/x_000000_000000_leftImg8bit.png", TRAIN_ID_TO_ID[train])
    assert evaluate_predictions(tmp_path / "pred", tmp_path / "gt", "val").scores.pixel_accuracy == 1.0


def test_sixteen_bit_predictions_are_read_like_eight_bit(dataset: tuple[Path, Path, list[str]]) -> None:
    gt_root, pred_dir, keys = dataset
    before = evaluate_predictions(pred_dir, gt_root, "val").to_dict()
    for key in keys:
        path = _pred_path(pred_dir, key)
        write_png(path, np.array(Image.open(path)).astype(np.uint16))
    assert Image.open(_pred_path(pred_dir, keys[0])).mode == "I;16"
    after = evaluate_predictions(pred_dir, gt_root, "val").to_dict()
    assert after["class_iou"] == before["class_iou"] and after["hard_regions"] == before["hard_regions"]


def test_large_values_are_not_label_ids(dataset: tuple[Path, Path, list[str]]) -> None:
    gt_root, pred_dir, keys = dataset
    path = _pred_path(pred_dir, keys[0])
    write_png(path, np.full((32, 64), 40, dtype=np.uint8))
    with pytest.raises(DataError, match="values 40, which are not Cityscapes labelIds. Predictions must be labelIds"):
        evaluate_predictions(pred_dir, gt_root, "val")


def test_colour_and_broken_predictions(dataset: tuple[Path, Path, list[str]]) -> None:
    gt_root, pred_dir, keys = dataset
    path = _pred_path(pred_dir, keys[0])
    Image.fromarray(np.zeros((32, 64, 3), dtype=np.uint8)).save(path)
    with pytest.raises(DataError, match="has 3 channels; expected a single-channel PNG"):
        evaluate_predictions(pred_dir, gt_root, "val")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage")
    with pytest.raises(DataError, match="Cannot decode the prediction"):
        evaluate_predictions(pred_dir, gt_root, "val")
    path.write_bytes(b"GIF89a")
    with pytest.raises(DataError, match="is not a PNG file"):
        evaluate_predictions(pred_dir, gt_root, "val")


def test_ground_truth_folder_errors(dataset: tuple[Path, Path, list[str]], tmp_path: Path) -> None:
    gt_root, pred_dir, _ = dataset
    with pytest.raises(DataError, match="No split 'test' under .*gtFine. It has: val"):
        find_ground_truth(gt_root, "test")
    with pytest.raises(DataError, match="does not exist"):
        find_ground_truth(tmp_path / "nowhere", "val")
    (tmp_path / "empty/gtFine/val").mkdir(parents=True)
    with pytest.raises(DataError, match="No ground truth"):
        find_ground_truth(tmp_path / "empty", "val")
    # the gtFine folder itself, or no split at all, work too
    assert len(find_ground_truth(gt_root / "gtFine", "val")) == 3
    assert len(find_ground_truth(gt_root / "gtFine" / "val" / "aachen")) == 2
    with pytest.raises(DataError, match="predictions folder .* does not exist"):
        evaluate_predictions(tmp_path / "nothing", gt_root, "val")


def test_instance_ids_missing_for_some_or_all(dataset: tuple[Path, Path, list[str]]) -> None:
    gt_root, pred_dir, keys = dataset
    inst = sorted(gt_root.rglob("*_instanceIds.png"))
    inst[0].unlink()
    with pytest.raises(DataError, match="1 ground-truth images have no instanceIds file"):
        evaluate_predictions(pred_dir, gt_root, "val")
    # explicitly without instances it works, and iIoU is reported as not computed
    result = evaluate_predictions(pred_dir, gt_root, "val", instances=False)
    assert result.scores.class_iiou is None and result.to_dict()["miiou"] is None
    for p in inst[1:]:
        p.unlink()
    assert evaluate_predictions(pred_dir, gt_root, "val").scores.class_iiou is None
    with pytest.raises(DataError, match="no instanceIds file"):
        match_predictions(pred_dir, find_ground_truth(gt_root, "val"), instances=True)


def test_result_dictionary(dataset: tuple[Path, Path, list[str]]) -> None:
    gt_root, pred_dir, _ = dataset
    d = evaluate_predictions(pred_dir, gt_root, "val", per_image=True).to_dict()
    assert d["num_images"] == 3 and len(d["per_image"]) == 3
    assert set(d["class_iou"]) == set(fornet_cli.data.labels.CLASS_NAMES)
    assert d["hard_regions"]["boundary_width"] == 3.0
    assert set(d["hard_regions"]["trimap_miou"]) == {"3", "6", "12", "24"}
    assert d["source"]["kind"] == "predictions" and d["source"]["instances"] is True
    counts = np.array(d["confusion_train_ids"]["counts"])
    assert counts.shape == (19, 20) and counts.sum() == d["valid_pixels"]
    assert evaluate_predictions(pred_dir, gt_root, "val", hard=None).to_dict()["hard_regions"] is None


# ------------------------------------------------------------------------------------------------------
# evaluate_model
# ------------------------------------------------------------------------------------------------------


class TinySegmenter(nn.Module):
    def __init__(self, classes: int = 19) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, classes, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _samples(gt_root: Path) -> list[dict]:
    """The contract of fornet's datasets: normalised image, trainId label, instance ids, name."""
    out = []
    for i, path in enumerate(sorted(gt_root.rglob("*_gtFine_labelIds.png"))):
        ids = np.array(Image.open(path))
        inst = np.array(Image.open(str(path).replace("labelIds", "instanceIds"))).astype(np.int32)
        torch.manual_seed(i)
        out.append(
            {
                "image": torch.randn(3, *ids.shape),
                "mask": torch.from_numpy(ID_TO_TRAIN_ID[ids].astype(np.int64)),
                "instance_ids": torch.from_numpy(inst),
                "name": path.name.split("_gtFine")[0],
            }
        )
    return out


class ListDataset(torch.utils.data.Dataset):
    def __init__(self, samples: list[dict]) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        return self.samples[i]


def test_model_evaluation_equals_evaluating_its_written_predictions(
    dataset: tuple[Path, Path, list[str]], tmp_path: Path
) -> None:
    gt_root, _, _ = dataset
    model = TinySegmenter().eval()
    samples = _samples(gt_root)
    cfg = InferenceConfig(batch_size=2)
    result = evaluate_model(model, ListDataset(samples), cfg)
    # write the same predictions as labelIds and evaluate the folder
    pred_dir = tmp_path / "model_pred"
    with torch.no_grad():
        for s in samples:
            train = model(s["image"][None]).argmax(1)[0].numpy().astype(np.uint8)
            write_png(pred_dir / f"{s['name']}_leftImg8bit.png", TRAIN_ID_TO_ID[train])
    folder = evaluate_predictions(pred_dir, gt_root, "val")
    a, b = result.to_dict(), folder.to_dict()
    for key in ("class_iou", "class_iiou", "category_iou", "category_iiou", "confusion_train_ids", "valid_pixels"):
        assert a[key] == pytest.approx(b[key]) if key.endswith("iiou") else a[key] == b[key], key
    assert a["hard_regions"]["boundary_iou"] == b["hard_regions"]["boundary_iou"]
    assert a["hard_regions"]["trimap_miou"] == b["hard_regions"]["trimap_miou"]
    assert a["source"]["kind"] == "model" and a["source"]["inference"]["batch_size"] == 2
    # a plain iterable of samples, one at a time, and a limit
    again = evaluate_model(model, iter(samples), InferenceConfig(batch_size=1), per_image=True, limit=2)
    assert again.scores.num_images == 2 and [p.name for p in again.scores.per_image] == [s["name"] for s in samples[:2]]


def test_fornet_models_report_the_selector(tmp_path: Path) -> None:
    model = fornet_cli.create_model("fornet_mbv3", num_classes=19)
    # every pixel evaluated, sizes divisible by the stride: region coverage is exactly K / (h * w)
    samples = [{"image": torch.randn(3, 64, 96), "mask": torch.randint(0, 19, (64, 96))} for _ in range(2)]
    seen = []
    result = evaluate_model(model, samples, progress=lambda done, total: seen.append((done, total)))
    sel = result.hard.selector
    h, w = 64 // model.stride, 96 // model.stride
    expected = [min(h * w, max(1, round(r * h * w))) / (h * w) for r in model.topk_ratios]
    assert sel.ratios == model.topk_ratios
    assert sel.coverage == pytest.approx(expected)
    assert all(0.0 <= r <= 1.0 for r in sel.error_recall)
    assert list(sel.error_recall) == sorted(sel.error_recall)  # nested regions
    assert result.scores.class_iiou is None  # no instance ids in these samples
    assert seen[-1] == (2, 2)
    # TTA or a sliding window give no masks: no selector scores
    tta = evaluate_model(model, samples, InferenceConfig(flip=True))
    assert tta.hard.selector is None


def test_model_evaluation_errors() -> None:
    model = TinySegmenter()
    with pytest.raises(DataError, match="yielded no images"):
        evaluate_model(model, [])
    with pytest.raises(DataError, match="'image' and 'mask'"):
        evaluate_model(model, [{"image": torch.zeros(3, 8, 8)}])
    with pytest.raises(DataError, match="not train ids"):
        evaluate_model(model, [{"image": torch.zeros(3, 8, 8), "mask": torch.full((8, 8), 40)}])
    with pytest.raises(DataError, match="label of x is"):
        evaluate_model(model, [{"image": torch.zeros(3, 8, 8), "mask": torch.zeros(4, 4), "name": "x"}])


def test_hard_config_reaches_the_scores(dataset: tuple[Path, Path, list[str]]) -> None:
    gt_root, pred_dir, _ = dataset
    cfg = HardRegionConfig(boundary_width=2, trimap_widths=(2, 5), scale_with_size=False)
    hard = evaluate_predictions(pred_dir, gt_root, "val", hard=cfg).hard
    assert hard.boundary_width == 2.0 and set(hard.trimap_miou) == {2.0, 5.0}
    assert hard.pixel_radii == {"32x64": (2, 5)}
