import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SYNTH_SIZE, SYNTH_TRAIN, SYNTH_VAL  # type: ignore[import-not-found]
from PIL import Image

from fornet_cli.data.cityscapes import CityscapesDataset
from fornet_cli.data.labels import ID_TO_LABEL, ID_TO_TRAIN_ID, NUM_CLASSES
from fornet_cli.data.synth import (
    MARKER,
    default_synth_root,
    ensure_synth_dataset,
    frame_name,
    generate_dataset,
)
from fornet_cli.data.transforms import TransformSettings, eval_transforms, train_transforms
from fornet_cli.errors import ConfigError, DataError

NAME = re.compile(r"^([a-z]+)_(\d{6})_(\d{6})_(leftImg8bit|gtFine_labelIds|gtFine_instanceIds|gtFine_color)\.png$")


def _frames(root: Path, split: str = "train") -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    out = []
    for image in sorted((root / "leftImg8bit" / split).glob("*/*_leftImg8bit.png")):
        gt = root / "gtFine" / split / image.parent.name / image.name.replace("leftImg8bit", "gtFine_labelIds")
        inst = Path(str(gt).replace("labelIds", "instanceIds"))
        out.append(
            (np.asarray(Image.open(image)), np.asarray(Image.open(gt)), np.asarray(Image.open(inst)).astype(np.int64))
        )
    return out


def test_official_layout_and_naming(synth_root: Path) -> None:
    files = sorted(p.relative_to(synth_root) for p in synth_root.rglob("*") if p.is_file())
    assert Path(MARKER) in files
    pngs = [f for f in files if f.suffix == ".png"]
    assert len(pngs) == 4 * (SYNTH_TRAIN + SYNTH_VAL)
    for f in pngs:
        top, split, city = f.parts[:3]
        m = NAME.match(f.name)
        assert m and m.group(1) == city and m.group(3) == "000019", f
        assert (top, m.group(4).startswith("gtFine")) in (("leftImg8bit", False), ("gtFine", True)), f
        assert split in ("train", "val")
    assert frame_name("train", 5) == ("brunnstadt", "brunnstadt_000001_000019")
    marker = json.loads((synth_root / MARKER).read_text())
    assert marker["complete"] and marker["counts"] == {"train": SYNTH_TRAIN, "val": SYNTH_VAL}


def test_file_formats_and_instance_ids(synth_root: Path) -> None:
    image = next((synth_root / "leftImg8bit" / "train").glob("*/*.png"))
    stem = image.name.replace("_leftImg8bit.png", "")
    gt = synth_root / "gtFine" / "train" / image.parent.name
    assert Image.open(image).mode == "RGB" and Image.open(image).size == SYNTH_SIZE[::-1]
    assert Image.open(gt / f"{stem}_gtFine_labelIds.png").mode == "L"
    assert Image.open(gt / f"{stem}_gtFine_instanceIds.png").mode == "I;16"
    color = np.asarray(Image.open(gt / f"{stem}_gtFine_color.png"))
    assert color.shape[2] == 4 and (color[..., 3] == 255).all()
    for _, ids, inst in _frames(synth_root):
        assert ids.max() <= 33
        has_inst = np.array([ID_TO_LABEL[int(i)].has_instances for i in range(34)])[ids]
        # instance classes: id * 1000 + k (or the plain id for far-away groups); other classes: the plain id
        assert np.array_equal(np.where(inst >= 1000, inst // 1000, inst), ids)
        assert not (inst[~has_inst] >= 1000).any()
    ids = np.asarray(Image.open(gt / f"{stem}_gtFine_labelIds.png"))
    official = np.array([ID_TO_LABEL[int(i)].color for i in range(34)], dtype=np.uint8)
    assert np.array_equal(color[..., :3], official[ids])


def test_every_class_and_some_void_in_20_frames(synth_root: Path) -> None:
    frames = _frames(synth_root)
    assert len(frames) == 20
    present_train = set()
    present_ids = set()
    for _, ids, _inst in frames:
        present_ids |= set(np.unique(ids).tolist())
        present_train |= set(np.unique(ID_TO_TRAIN_ID[ids]).tolist())
    assert set(range(NUM_CLASSES)) <= present_train
    assert len(present_ids & {1, 2, 3, 4, 5, 6}) >= 3  # ego vehicle, border, out of roi, static, ...
    cars = [int(v) for _, _, inst in frames for v in np.unique(inst) if v // 1000 == 26]
    assert len(cars) >= 40 and max(cars) >= 26005  # many separate car instances, numbered from 26000 per frame


def test_not_separable_by_colour_alone(synth_root: Path) -> None:
    """The best colour lookup (16 levels per channel, fitted on the very frames it is scored on) is poor."""
    frames = _frames(synth_root)
    x = np.concatenate([img.reshape(-1, 3) for img, _, _ in frames]).astype(np.int64) // 16
    y = np.concatenate([ID_TO_TRAIN_ID[ids].ravel() for _, ids, _ in frames]).astype(np.int64)
    keep = y != 255
    bins = ((x[:, 0] * 16 + x[:, 1]) * 16 + x[:, 2])[keep]
    y = y[keep]
    counts = np.zeros((16**3, NUM_CLASSES), np.int64)
    np.add.at(counts, (bins, y), 1)
    pred = counts.argmax(1)[bins]
    ious = [((pred == c) & (y == c)).sum() / ((pred == c) | (y == c)).sum() for c in range(NUM_CLASSES)]
    assert np.mean(ious) < 0.5 and (pred == y).mean() < 0.85
    # and colour varies from one car to the next
    means = [
        img[inst == v].mean()
        for img, _, inst in frames
        for v in np.unique(inst)
        if v // 1000 == 26 and (inst == v).sum() > 50
    ]
    assert np.std(means) > 20


def test_thin_structures(synth_root: Path) -> None:
    """Poles and bicycles are mostly edge: most of their pixels touch another class within 2 pixels."""
    for label_id in (17, 33):
        edge = total = 0
        for _, ids, _ in _frames(synth_root):
            mask = ids == label_id
            near_other = np.zeros_like(mask)
            for d in (1, 2):
                near_other[:, d:] |= ids[:, :-d] != label_id
                near_other[:, :-d] |= ids[:, d:] != label_id
            edge += int((mask & near_other).sum())
            total += int(mask.sum())
        assert total > 0 and edge / total > 0.5, (label_id, edge / total)


def test_deterministic_and_independent_of_the_set_size(synth_root: Path, tmp_path: Path) -> None:
    generate_dataset(tmp_path / "a", train=3, val=1, size=SYNTH_SIZE, seed=0, workers=2)
    small = _frames(tmp_path / "a")
    names_small = sorted(p.name for p in (tmp_path / "a" / "leftImg8bit" / "train").glob("*/*"))
    big = dict(zip(sorted(p.name for p in (synth_root / "leftImg8bit" / "train").glob("*/*")), _frames(synth_root)))
    for name, frame in zip(names_small, small):
        assert all(np.array_equal(a, b) for a, b in zip(frame, big[name])), name
    assert np.array_equal(_frames(tmp_path / "a", "val")[0][0], _frames(synth_root, "val")[0][0])
    generate_dataset(tmp_path / "b", train=1, val=0, size=SYNTH_SIZE, seed=1)
    assert not np.array_equal(_frames(tmp_path / "b")[0][0], big[names_small[0]][0])


def test_round_trip_through_dataset_transforms_and_loader(synth_root: Path) -> None:
    ds = CityscapesDataset(synth_root, "train", transform=train_transforms(TransformSettings(crop_size=(64, 96))))
    assert len(ds) == SYNTH_TRAIN and ds.instances
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, shuffle=True)))
    assert batch["image"].shape == (4, 3, 64, 96) and batch["image"].dtype == torch.float32
    assert batch["mask"].shape == (4, 64, 96) and batch["mask"].dtype == torch.int64
    assert set(batch["mask"].unique().tolist()) <= set(range(NUM_CLASSES)) | {255}
    val = CityscapesDataset(synth_root, "val", transform=eval_transforms())
    sample = val[0]
    assert sample["image"].shape == (3, *SYNTH_SIZE) and sample["mask"].shape == SYNTH_SIZE
    raw = CityscapesDataset(synth_root, "val")[0]
    assert torch.equal(sample["mask"], raw["mask"].long())


def test_refuses_non_empty_folders_and_replaces_its_own(tmp_path: Path) -> None:
    out = tmp_path / "set"
    out.mkdir()
    (out / "mine.txt").write_text("user data")
    with pytest.raises(DataError, match="is not empty.*--overwrite"):
        generate_dataset(out, train=1, val=0, size=(64, 128))
    generate_dataset(out, train=2, val=0, size=(64, 128), overwrite=True)  # writes beside the user's file
    assert (out / "mine.txt").read_text() == "user data"
    with pytest.raises(DataError, match="holds a synthetic set made before"):
        generate_dataset(out, train=1, val=0, size=(64, 128))
    generate_dataset(out, train=1, val=0, size=(64, 128), overwrite=True)  # the old, larger set is replaced
    assert len(list((out / "leftImg8bit").rglob("*.png"))) == 1
    foreign = tmp_path / "cityscapes"
    (foreign / "leftImg8bit").mkdir(parents=True)
    with pytest.raises(DataError, match="fornet did not generate"):
        generate_dataset(foreign, train=1, val=0, size=(64, 128), overwrite=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is a file"):
        generate_dataset(tmp_path / "file", train=1, val=0)


@pytest.mark.parametrize("kwargs", [{"size": (16, 256)}, {"train": 0, "val": 0}, {"train": -1}, {"workers": 0}])
def test_bad_settings(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        generate_dataset(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


def test_ensure_reuses_a_complete_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORNET_CACHE", str(tmp_path / "cache"))
    root = default_synth_root(2, 1, (64, 128), 3)
    assert root == tmp_path / "cache" / "synth" / "64x128-train2-val1-seed3"
    ensure_synth_dataset(root, 2, 1, (64, 128), 3)
    image = next((root / "leftImg8bit").rglob("*.png"))
    stamp = image.stat().st_mtime_ns
    ensure_synth_dataset(root, 2, 1, (64, 128), 3)
    assert image.stat().st_mtime_ns == stamp  # reused
    marker = json.loads((root / MARKER).read_text())
    (root / MARKER).write_text(json.dumps({**marker, "complete": False}))  # an interrupted run
    ensure_synth_dataset(root, 2, 1, (64, 128), 3)
    assert json.loads((root / MARKER).read_text())["complete"]
