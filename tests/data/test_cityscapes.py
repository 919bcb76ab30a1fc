import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

from fornet_cli.data.cityscapes import ENV_VAR, CityscapesDataset, resolve_root
from fornet_cli.data.io import write_png
from fornet_cli.data.labels import ID_TO_TRAIN_ID
from fornet_cli.errors import ConfigError, DataError

Layout = Callable[..., list[str]]


def _official_train_id_lut() -> np.ndarray:
    """id -> trainId built from cityscapesscripts itself (255 and -1 both mean ignore)."""
    labels = pytest.importorskip("cityscapesscripts.helpers.labels", reason="cityscapesscripts is a dev extra")
    lut = np.full(256, 255, dtype=np.uint8)
    for lb in labels.labels:
        if lb.id >= 0 and 0 <= lb.trainId < 255:
            lut[lb.id] = lb.trainId
    return lut


def _gt(root: Path, name: str, kind: str = "labelIds", split: str = "train") -> Path:
    return root / "gtFine" / split / name.split("_")[0] / f"{name}_gtFine_{kind}.png"


def _img(root: Path, name: str, split: str = "train") -> Path:
    return root / "leftImg8bit" / split / name.split("_")[0] / f"{name}_leftImg8bit.png"


# ------------------------------------------------------------------------------------ the genuine fixtures


def test_real_fixture_train_split(real_fixtures: Path) -> None:
    root = real_fixtures / "cityscapes-mini"
    lut = _official_train_id_lut()
    ds = CityscapesDataset(root, "train")
    assert len(ds) == 8 and ds.instances and not ds.uses_train_id_files
    for i in range(len(ds)):
        sample = ds[i]
        files = ds.samples[i]
        image, mask, inst = sample["image"], sample["mask"], sample["instance_ids"]
        assert isinstance(image, tv_tensors.Image) and image.shape == (3, 1024, 2048) and image.dtype == torch.uint8
        assert isinstance(mask, tv_tensors.Mask) and mask.shape == (1024, 2048) and mask.dtype == torch.uint8
        label_ids = np.asarray(Image.open(files.label_ids))
        assert np.array_equal(mask.numpy(), lut[label_ids])  # every pixel, against cityscapesscripts
        assert inst.dtype == torch.int32 and int(inst.max()) >= 1000
        inst_np = inst.numpy()
        semantic = np.where(inst_np >= 1000, inst_np // 1000, inst_np)
        assert np.array_equal(semantic, label_ids)
        assert sample["name"] == files.name and sample["path"].endswith(f"{files.name}_leftImg8bit.png")
    val = CityscapesDataset(root, "val")
    assert len(val) == 1 and val[0]["name"] == "frankfurt_000000_000576"


def test_real_fixture_from_the_environment_variable(real_fixtures: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(real_fixtures / "cityscapes-mini"))
    assert resolve_root(None) == real_fixtures / "cityscapes-mini"
    assert len(CityscapesDataset(split="val")) == 1


# ------------------------------------------------------------------------------------------------ loading


def test_samples_and_dataloader_with_workers(tmp_path: Path, layout: Layout) -> None:
    layout(tmp_path, n=4, size=(8, 16))
    ds = CityscapesDataset(tmp_path, "train")
    assert repr(ds).startswith("CityscapesDataset(") and len(ds) == 4
    ds2 = pickle.loads(pickle.dumps(ds))
    assert torch.equal(ds2[1]["mask"], ds[1]["mask"])
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2)
    batches = list(loader)
    assert len(batches) == 2
    assert batches[0]["image"].shape == (2, 3, 8, 16) and batches[0]["mask"].shape == (2, 8, 16)
    assert batches[0]["instance_ids"].dtype == torch.int32 and len(batches[1]["name"]) == 2
    ids = np.asarray(Image.open(ds.samples[0].label_ids))
    assert np.array_equal(ds[0]["mask"].numpy(), ID_TO_TRAIN_ID[ids])


def test_test_split_needs_no_labels(tmp_path: Path, layout: Layout) -> None:
    layout(tmp_path, "test", n=2, labels=False)
    layout(tmp_path, "train", n=1)
    ds = CityscapesDataset(tmp_path, "test")
    sample = ds[0]
    assert len(ds) == 2 and "mask" not in sample and "instance_ids" not in sample and sample["image"].shape[0] == 3


def test_transform_gets_the_whole_sample(tmp_path: Path, layout: Layout) -> None:
    layout(tmp_path, n=1)
    seen: list[Any] = []
    ds = CityscapesDataset(tmp_path, "train", transform=lambda s: seen.append(sorted(s)) or "done")
    assert ds[0] == "done" and seen == [["image", "instance_ids", "mask", "name", "path"]]


def test_instances_are_optional(tmp_path: Path, layout: Layout) -> None:
    names = layout(tmp_path, n=2)
    _gt(tmp_path, names[1], "instanceIds").unlink()
    ds = CityscapesDataset(tmp_path)
    assert not ds.instances and "instance_ids" not in ds[0]
    assert "instance_ids" not in CityscapesDataset(tmp_path, instances=False)[0]
    with pytest.raises(DataError, match=f"{names[1]}_gtFine_instanceIds.png.*missing"):
        CityscapesDataset(tmp_path, instances=True)


def test_label_train_ids_files_are_used_when_consistent(tmp_path: Path, layout: Layout) -> None:
    names = layout(tmp_path, n=2)
    for name in names:
        ids = np.asarray(Image.open(_gt(tmp_path, name)))
        write_png(_gt(tmp_path, name, "labelTrainIds"), ID_TO_TRAIN_ID[ids])
    ds = CityscapesDataset(tmp_path)
    assert ds.uses_train_id_files
    # the files are really read: a change in one shows in the sample
    changed = ID_TO_TRAIN_ID[np.asarray(Image.open(_gt(tmp_path, names[1])))].copy()
    changed[0, 0] = 18 if changed[0, 0] != 18 else 17
    write_png(_gt(tmp_path, names[1], "labelTrainIds"), changed)
    assert np.array_equal(ds[1]["mask"].numpy(), changed)
    assert not CityscapesDataset(tmp_path, train_id_files=False).uses_train_id_files


def test_inconsistent_label_train_ids_files_are_ignored(tmp_path: Path, layout: Layout) -> None:
    names = layout(tmp_path, n=2)
    for name in names:
        write_png(_gt(tmp_path, name, "labelTrainIds"), np.zeros((8, 16), np.uint8))  # all "road": wrong
    with pytest.warns(UserWarning, match="disagrees with the official mapping"):
        ds = CityscapesDataset(tmp_path)
    assert not ds.uses_train_id_files
    ids = np.asarray(Image.open(_gt(tmp_path, names[0])))
    assert np.array_equal(ds[0]["mask"].numpy(), ID_TO_TRAIN_ID[ids])


def test_partial_label_train_ids_files_are_not_used(tmp_path: Path, layout: Layout) -> None:
    names = layout(tmp_path, n=2)
    write_png(_gt(tmp_path, names[0], "labelTrainIds"), np.zeros((8, 16), np.uint8))
    assert not CityscapesDataset(tmp_path).uses_train_id_files


# --------------------------------------------------------------------------------------------- bad input


def test_no_root_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(DataError, match=f"no Cityscapes folder given.*{ENV_VAR}"):
        CityscapesDataset()


def test_root_missing_or_a_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=f"{tmp_path / 'nope'} does not exist"):
        CityscapesDataset(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is a file, not a dataset folder"):
        CityscapesDataset(tmp_path / "file")


def test_left_img_8bit_missing(tmp_path: Path, layout: Layout) -> None:
    with pytest.raises(DataError, match=f"{tmp_path} has no leftImg8bit/ folder.*leftImg8bit_trainvaltest.zip"):
        CityscapesDataset(tmp_path)
    layout(tmp_path / "inner")
    with pytest.raises(DataError, match=f"Did you mean {tmp_path / 'inner'}"):
        CityscapesDataset(tmp_path)
    with pytest.raises(DataError, match="pass the folder above it"):
        CityscapesDataset(tmp_path / "inner" / "leftImg8bit")


def test_gt_fine_missing(tmp_path: Path, layout: Layout) -> None:
    layout(tmp_path, labels=False)
    with pytest.raises(DataError, match=f"{tmp_path} has no gtFine/ folder.*gtFine_trainvaltest.zip"):
        CityscapesDataset(tmp_path, "train")
    assert len(CityscapesDataset(tmp_path, "train", labels=False)) == 2
    (tmp_path / "gtFine" / "val").mkdir(parents=True)
    with pytest.raises(DataError, match=r"the label folder .*gtFine/train does not exist"):
        CityscapesDataset(tmp_path, "train")


def test_split_missing_or_empty_or_unknown(tmp_path: Path, layout: Layout) -> None:
    layout(tmp_path, "train")
    with pytest.raises(DataError, match=r"leftImg8bit/val does not exist \(splits present: train\)"):
        CityscapesDataset(tmp_path, "val")
    (tmp_path / "leftImg8bit" / "val" / "lindau").mkdir(parents=True)
    with pytest.raises(DataError, match=r"no images in .*leftImg8bit/val"):
        CityscapesDataset(tmp_path, "val")
    shutil.copy(_img(tmp_path, "aachen_000000_000019"), tmp_path / "leftImg8bit" / "val" / "x_0_0_leftImg8bit.png")
    with pytest.raises(DataError, match="move them into a folder per city"):
        CityscapesDataset(tmp_path, "val")
    with pytest.raises(ConfigError, match="unknown split 'trian'.*Did you mean 'train'"):
        CityscapesDataset(tmp_path, "trian")


def test_image_without_label(tmp_path: Path, layout: Layout) -> None:
    names = layout(tmp_path, n=3)
    _gt(tmp_path, names[1]).unlink()
    with pytest.raises(DataError) as info:
        CityscapesDataset(tmp_path)
    msg = str(info.value)
    assert "1 of 3 images" in msg and str(_img(tmp_path, names[1])) in msg and str(_gt(tmp_path, names[1])) in msg


def test_label_of_another_size(tmp_path: Path, layout: Layout) -> None:
    names = layout(tmp_path, n=2)
    write_png(_gt(tmp_path, names[1]), np.zeros((8, 15), np.uint8))
    ds = CityscapesDataset(tmp_path)  # sizes are checked when a sample is loaded
    ds[0]
    with pytest.raises(DataError, match=r"_gtFine_labelIds.png is 15x8 but its image .* is 16x8"):
        ds[1]
    write_png(_gt(tmp_path, names[1]), np.zeros((8, 16), np.uint8))
    write_png(_gt(tmp_path, names[1], "instanceIds"), np.zeros((4, 16), np.uint16))
    with pytest.raises(DataError, match=r"_gtFine_instanceIds.png is 16x4"):
        ds[1]


def test_label_values_outside_the_label_ids(tmp_path: Path, layout: Layout) -> None:
    names = layout(tmp_path, n=1)
    ids = np.full((8, 16), 7, np.uint8)
    ids[0, :3] = (34, 255, 200)
    write_png(_gt(tmp_path, names[0]), ids)
    with pytest.raises(DataError, match=r"labelIds.png has values 34, 200, 255 outside the label ids 0..33") as info:
        CityscapesDataset(tmp_path)[0]
    assert str(_gt(tmp_path, names[0])) in str(info.value)


def test_colour_png_as_label(tmp_path: Path, layout: Layout) -> None:
    names = layout(tmp_path, n=1)
    write_png(_gt(tmp_path, names[0]), np.zeros((8, 16, 3), np.uint8))
    with pytest.raises(DataError, match="is a RGB image, not a label map"):
        CityscapesDataset(tmp_path)[0]


def test_bad_label_train_ids_values(tmp_path: Path, layout: Layout) -> None:
    names = layout(tmp_path, n=1)
    _gt(tmp_path, names[0]).unlink()  # only the train-id file: it is used, and its values are checked
    write_png(_gt(tmp_path, names[0], "labelTrainIds"), np.full((8, 16), 19, np.uint8))
    with pytest.raises(DataError, match="values 19 that are not train ids"):
        CityscapesDataset(tmp_path)[0]


@pytest.mark.parametrize("which", ["image", "label"])
def test_corrupt_png_is_an_error_naming_the_file(tmp_path: Path, layout: Layout, which: str) -> None:
    names = layout(tmp_path, n=2, size=(64, 64))
    path = _img(tmp_path, names[1]) if which == "image" else _gt(tmp_path, names[1])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    ds = CityscapesDataset(tmp_path)
    ds[0]
    with pytest.raises(DataError, match="corrupt/truncated") as info:
        ds[1]
    assert str(path) in str(info.value)
