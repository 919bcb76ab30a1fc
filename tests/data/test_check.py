from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import SYNTH_TRAIN, SYNTH_VAL  # type: ignore[import-not-found]

from fornet_cli.data.check import check_dataset
from fornet_cli.data.io import write_png
from fornet_cli.data.labels import CLASS_NAMES, ID_TO_TRAIN_ID
from fornet_cli.errors import DataError

Layout = Callable[..., list[str]]


def _gt(root: Path, name: str, kind: str = "labelIds") -> Path:
    return root / "gtFine" / "train" / "aachen" / f"{name}_gtFine_{kind}.png"


def test_generated_set_is_clean(synth_root: Path) -> None:
    report = check_dataset(synth_root)
    assert report.ok and report.problems == [] and report.notes == []
    train, val = report.splits
    assert (train.split, train.images, train.labelled, train.with_instances) == (
        "train",
        SYNTH_TRAIN,
        SYNTH_TRAIN,
        SYNTH_TRAIN,
    )
    assert val.images == SYNTH_VAL and train.sizes == {"256x128": SYNTH_TRAIN}
    assert train.labelled_pixels == SYNTH_TRAIN * 128 * 256
    assert all(n > 0 for n in train.class_images)
    data = report.to_dict()
    split = data["splits"]["train"]  # type: ignore[index]
    assert list(split["classes"]) == list(CLASS_NAMES)
    total = sum(c["fraction"] for c in split["classes"].values()) + split["ignored_fraction"]
    assert abs(total - 1.0) < 1e-9


def test_real_fixture_is_clean(real_fixtures: Path) -> None:
    report = check_dataset(real_fixtures / "cityscapes-mini")
    assert report.ok, report.problems
    train = report.splits[0]
    assert (train.images, train.labelled, train.with_instances, train.sizes) == (8, 8, 8, {"2048x1024": 8})
    assert train.class_pixels[0] > train.class_pixels[5] > 0  # more road than pole


def test_every_problem_is_reported_and_checking_goes_on(tmp_path: Path, layout: Layout) -> None:
    names = layout(tmp_path, n=7, size=(32, 32))
    _gt(tmp_path, names[0]).unlink()  # no label
    write_png(_gt(tmp_path, names[1]), np.zeros((31, 32), np.uint8))  # wrong size
    write_png(_gt(tmp_path, names[2]), np.full((32, 32), 40, np.uint8))  # not label ids
    image = tmp_path / "leftImg8bit" / "train" / "aachen" / f"{names[3]}_leftImg8bit.png"
    image.write_bytes(image.read_bytes()[:100])  # truncated
    write_png(_gt(tmp_path, names[4], "instanceIds"), np.zeros((32, 32), np.uint16))  # disagrees with labels
    write_png(_gt(tmp_path, names[5], "labelTrainIds"), np.zeros((32, 32), np.uint8))  # disagrees with labels
    write_png(_gt(tmp_path, "aachen_000099_000019"), np.zeros((32, 32), np.uint8))  # a label without image
    report = check_dataset(tmp_path)
    assert not report.ok and len(report.problems) == 6
    expected = [
        (names[0], "has no label file"),
        (names[1], "is 32x31 but its image"),
        (names[2], "values 40 outside"),
        (names[3], "corrupt/truncated"),
        (names[4], "instanceIds.png disagrees with"),
        (names[5], "labelTrainIds.png disagrees with the official mapping"),
    ]
    for (name, what), problem in zip(expected, report.problems):
        assert name in problem and what in problem, problem
    assert len(report.notes) == 1 and "aachen_000099_000019" in report.notes[0]
    train = report.splits[0]
    assert train.images == 7 and train.labelled == 3  # frames 4-6 have usable labelIds (4, 5: odd extra files)


def test_split_and_root_problems(tmp_path: Path, layout: Layout) -> None:
    with pytest.raises(DataError, match="no leftImg8bit/"):
        check_dataset(tmp_path)
    layout(tmp_path, labels=False)
    (tmp_path / "leftImg8bit" / "val").mkdir()
    (tmp_path / "leftImg8bit" / "train_extra").mkdir()
    report = check_dataset(tmp_path)
    assert any("no gtFine/ folder" in p for p in report.problems)
    assert any("no images in" in p and "val" in p for p in report.problems)
    assert any("train_extra" in n for n in report.notes)
    assert check_dataset(tmp_path, ["train"]).splits[0].labelled == 0


def test_test_split_labels_are_not_counted(tmp_path: Path, layout: Layout) -> None:
    layout(tmp_path, "test", n=2)
    report = check_dataset(tmp_path)
    assert report.ok and report.splits[0].images == 2 and report.splits[0].labelled == 0


def test_counts_match_the_label_files(tmp_path: Path, layout: Layout) -> None:
    names = layout(tmp_path, n=2, size=(16, 16))
    report = check_dataset(tmp_path)
    from PIL import Image

    train_ids = np.concatenate([ID_TO_TRAIN_ID[np.asarray(Image.open(_gt(tmp_path, n)))].ravel() for n in names])
    assert report.splits[0].class_pixels == np.bincount(train_ids, minlength=256)[:19].tolist()
    assert report.splits[0].ignored_pixels == int((train_ids == 255).sum())
