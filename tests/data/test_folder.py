"""Your own data: classes files, the images/ + masks/ layout, and the synthetic scenes written in it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fornet_cli.data.classes import (
    CITYSCAPES,
    check_model_classes,
    cityscapes_classes,
    load_classes,
    resolve_classes,
)
from fornet_cli.data.folder import FolderDataset, index_folder_split
from fornet_cli.data.folder_check import check_folder_dataset
from fornet_cli.data.io import read_label, write_png
from fornet_cli.data.labels import CLASS_NAMES
from fornet_cli.data.synth import generate_dataset
from fornet_cli.errors import DataError

THREE = {"classes": [{"name": "ground", "color": [128, 64, 128]}, {"name": "wall", "color": [70, 70, 70]},
                     {"name": "tree", "color": [107, 142, 35]}], "ignore_index": 255}


def _write(path: Path, document: object) -> Path:
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def _tiny_set(root: Path, masks: dict[str, np.ndarray], document: object = THREE, split: str = "train") -> Path:
    """A folder data set with one 8 x 12 image per mask."""
    (root / split / "images").mkdir(parents=True, exist_ok=True)
    for name, mask in masks.items():
        write_png(root / split / "images" / f"{name}.png", np.full((8, 12, 3), 90, np.uint8))
        write_png(root / split / "masks" / f"{name}.png", mask)
    _write(root / "classes.json", document)
    return root


def test_a_classes_file_in_json_and_yaml(tmp_path: Path) -> None:
    classes = load_classes(_write(tmp_path / "c.json", THREE))
    assert classes.names == ("ground", "wall", "tree") and classes.colors[1] == (70, 70, 70)
    assert classes.ignore_index == 255 and not classes.is_cityscapes
    yaml_text = "classes:\n  - {name: b, color: [0, 0, 255], index: 1}\n  - {name: a, color: [255, 0, 0], index: 0}\n"
    assert load_classes(_write(tmp_path / "c.yaml", yaml_text)).names == ("a", "b")  # put in index order
    preset = resolve_classes(CITYSCAPES, None)
    assert preset.names == CLASS_NAMES and preset.is_cityscapes and preset.colors[0] == (128, 64, 128)
    assert resolve_classes(None, _tiny_set(tmp_path / "set", {})).names == classes.names  # the root's file


@pytest.mark.parametrize(("document", "words"), [
    ({"classes": [{"name": "a", "color": [1, 2, 3]}, {"name": "a", "color": [1, 2, 3]}]},
     "classes 0 and 1 are both named 'a'"),
    ({"classes": [{"name": "a", "color": [1, 2, 3], "index": 0}, {"name": "b", "color": [1, 2, 3], "index": 0}]},
     "classes 'a' and 'b' both have index 0"),
    ({"classes": [{"name": "a", "color": [1, 2, 3], "index": 1}]}, "class 'a' has index 1; indices run from 0 to 0"),
    ({"classes": [{"name": "a", "color": [1, 2]}]}, "the color of class 'a' is [1, 2]; write three whole numbers"),
    ({"classes": [{"name": "a", "color": [1, 2, 300]}]}, "the color of class 'a' is [1, 2, 300]"),
    ({"classes": [{"name": "a", "color": "red"}]}, "the color of class 'a' is 'red'"),
    ({"classes": [{"name": "", "color": [1, 2, 3]}]}, "class 0 needs a \"name\""),
    ({"classes": [{"name": "a", "colour": [1, 2, 3]}]}, "class 0 has unknown key(s) 'colour'"),
    ({"classes": [{"name": "a", "color": [1, 2, 3]}], "ignore_index": 0}, "ignore_index must be a whole number in 1..255"),
    ({"classes": []}, "must hold a non-empty list of classes"),
    ([1, 2], "must hold a non-empty list of classes"),
])
def test_a_bad_classes_file_is_refused_with_what_to_fix(tmp_path: Path, document: object, words: str) -> None:
    path = _write(tmp_path / "classes.json", document)
    with pytest.raises(DataError) as caught:
        load_classes(path)
    assert str(path) in str(caught.value) and words in str(caught.value)


def test_unreadable_or_missing_classes(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is not valid JSON"):
        load_classes(_write(tmp_path / "c.json", "{nope"))
    with pytest.raises(DataError, match="has no classes.json or classes.yaml.*--classes cityscapes"):
        resolve_classes(None, tmp_path)


def test_the_dataset_maps_the_ignore_index_to_255(tmp_path: Path) -> None:
    document = {**THREE, "ignore_index": 9}
    mask = np.array([[0, 1, 2, 9] * 3] * 8, np.uint8)
    root = _tiny_set(tmp_path, {"a": mask}, document)
    data = FolderDataset(root, "train", resolve_classes(None, root))
    sample = data[0]
    assert sample["name"] == "a" and sample["image"].shape == (3, 8, 12)
    assert sorted(sample["mask"].unique().tolist()) == [0, 1, 2, 255]


def test_bad_folder_data_is_refused_naming_the_file(tmp_path: Path) -> None:
    good = np.zeros((8, 12), np.uint8)
    bad_value = good.copy()
    bad_value[0, 0] = 7
    root = _tiny_set(tmp_path / "set", {"a": good, "b": bad_value, "c": np.zeros((4, 12), np.uint8)})
    classes = resolve_classes(None, root)
    data = FolderDataset(root, "train", classes)
    with pytest.raises(DataError, match=r"b\.png holds the value\(s\) 7, which are not class indices \(0..2"):
        data[1]
    with pytest.raises(DataError, match=r"c\.png is 12x4 but its image .*c\.png is 12x8"):
        data[2]
    (root / "train" / "masks" / "a.png").unlink()
    with pytest.raises(DataError, match=r"1 of 3 images in .* have no mask \(a\): a\.png needs .*masks/a\.png"):
        index_folder_split(root, "train")
    (root / "val" / "images").mkdir(parents=True)
    with pytest.raises(DataError, match="The split 'val' is empty"):
        FolderDataset(root, "val", classes)
    with pytest.raises(DataError, match="splits present: train, val"):
        FolderDataset(root, "test", classes)
    with pytest.raises(DataError, match="--data folder needs --root DIR"):
        FolderDataset(None, "train", classes)


def test_check_lists_every_problem_and_counts_classes(tmp_path: Path) -> None:
    mask = np.array([[0] * 6 + [2] * 6] * 8, np.uint8)
    bad = mask.copy()
    bad[1, 1] = 200
    root = _tiny_set(tmp_path, {"a": mask, "b": bad})
    write_png(root / "train" / "masks" / "orphan.png", mask)
    report = check_folder_dataset(root)
    assert not report.ok and len(report.problems) == 1 and "b.png holds the value(s) 200" in report.problems[0]
    assert any("have no image" in note for note in report.notes)
    split = report.to_dict()["splits"]["train"]  # type: ignore[index]
    assert split["labelled"] == 1 and list(split["classes"]) == ["ground", "wall", "tree"]
    assert split["classes"]["tree"]["pixels"] == 48 and split["classes"]["wall"]["images"] == 0
    assert report.to_dict()["classes"] == THREE


def test_synth_writes_the_folder_layout_with_a_remap(tmp_path: Path) -> None:
    remap = {"classes": [{"name": "flat", "color": [1, 2, 3], "from": ["road", "sidewalk"]},
                         {"name": "sky", "color": [4, 5, 6], "from": ["sky"]}]}
    out = tmp_path / "set"
    generate_dataset(out, train=2, val=1, size=(48, 96), layout="folder", classes=_write(tmp_path / "r.json", remap))
    classes = load_classes(out / "classes.json")
    assert classes.names == ("flat", "sky") and classes.colors == ((1, 2, 3), (4, 5, 6))
    values = np.unique(np.concatenate([read_label(p).ravel() for p in (out / "train" / "masks").glob("*.png")]))
    assert set(values.tolist()) <= {0, 1, 255} and 255 in values and 0 in values
    assert check_folder_dataset(out).ok
    cityscapes = tmp_path / "cs"
    generate_dataset(cityscapes, train=1, val=1, size=(48, 96), layout="folder")
    assert load_classes(cityscapes / "classes.json").is_cityscapes


@pytest.mark.parametrize(("remap", "words"), [
    ({"classes": [{"name": "a", "color": [1, 2, 3]}]}, "class 'a' needs \"from\""),
    ({"classes": [{"name": "a", "color": [1, 2, 3], "from": ["roads"]}]}, "'roads' (in class 'a') is not a Cityscapes class"),
    ({"classes": [{"name": "a", "color": [1, 2, 3], "from": ["sky"]}, {"name": "b", "color": [1, 2, 3], "from": ["sky"]}]},
     "'sky' is taken by both 'a' and 'b'"),
])
def test_a_bad_remap_is_refused_before_anything_is_written(tmp_path: Path, remap: object, words: str) -> None:
    with pytest.raises(DataError) as caught:
        generate_dataset(tmp_path / "out", train=1, val=0, size=(48, 96), layout="folder",
                         classes=_write(tmp_path / "r.json", remap))
    assert words in str(caught.value) and not (tmp_path / "out").exists()


def test_model_and_data_classes_must_agree() -> None:
    check_model_classes(CLASS_NAMES, "m", cityscapes_classes())
    with pytest.raises(DataError, match=r"The model runs/x predicts 19 classes \(road, .*\) but the data set's classes "
                                        r"from d/classes.json are 2 \(a, b\)"):
        check_model_classes(CLASS_NAMES, "runs/x", cityscapes_classes().__class__(("a", "b"), ((0, 0, 0),) * 2, 255,
                                                                                  "d/classes.json"))
