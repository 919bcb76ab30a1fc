"""The Cityscapes dataset in its official layout.

::

    ROOT/leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png
    ROOT/gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_labelIds.png       label ids 0..33
    ROOT/gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_instanceIds.png    id, or id * 1000 + k (optional)
    ROOT/gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_labelTrainIds.png  train ids (optional, see below)

Building the index only lists folders; files are decoded and their sizes and values validated when a sample is
loaded (``fornet data check`` validates every file up front). Label ids are mapped to train ids with the lookup
table of :mod:`.labels`. ``*_gtFine_labelTrainIds.png`` files (written by cityscapesscripts'
``csCreateTrainIdLabelImgs``) are used when every sample of the split has one and the first of them agrees with
the official mapping of its labelIds pixel for pixel; otherwise the labelIds are mapped and a warning says why.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from ..errors import ConfigError, DataError, close_matches
from .io import read_image, read_instance_ids, read_label
from .labels import ID_TO_TRAIN_ID, IGNORE_INDEX, NUM_CLASSES, NUM_LABEL_IDS

ENV_VAR = "CITYSCAPES_DATASET"  # the variable cityscapesscripts reads too
SPLITS: tuple[str, ...] = ("train", "val", "test")
IMAGE_DIR, LABEL_DIR = "leftImg8bit", "gtFine"
IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"
TRAIN_ID_SUFFIX = "_gtFine_labelTrainIds.png"
INSTANCE_SUFFIX = "_gtFine_instanceIds.png"
COLOR_SUFFIX = "_gtFine_color.png"

_VALID_TRAIN_IDS = np.zeros(256, dtype=bool)
_VALID_TRAIN_IDS[list(range(NUM_CLASSES)) + [IGNORE_INDEX]] = True


@dataclass(frozen=True)
class SampleFiles:
    """The files of one frame; a label path is None when that file does not exist."""

    name: str  # "{city}_{seq}_{frame}", e.g. "aachen_000000_000019"
    city: str
    image: Path
    label_ids: Path | None = None
    train_ids: Path | None = None
    instance_ids: Path | None = None


def resolve_root(root: Path | str | None = None) -> Path:
    """The dataset root: ``root`` if given, else ``$CITYSCAPES_DATASET``; checked to hold ``leftImg8bit/``."""
    if root is None or str(root) == "":
        env = os.environ.get(ENV_VAR, "")
        if not env:
            raise DataError(
                f"no Cityscapes folder given. Pass it (--root / root=) or set {ENV_VAR} to the folder that holds "
                f"{IMAGE_DIR}/ and {LABEL_DIR}/."
            )
        root = env
    path = Path(root).expanduser()
    if not path.exists():
        raise DataError(f"the dataset folder {path} does not exist. Check the path (or {ENV_VAR}).")
    if not path.is_dir():
        raise DataError(
            f"{path} is a file, not a dataset folder. Pass the folder that holds {IMAGE_DIR}/ and {LABEL_DIR}/."
        )
    _require_dir(path, IMAGE_DIR, "leftImg8bit_trainvaltest.zip")
    return path


def _require_dir(root: Path, sub: str, archive: str) -> Path:
    path = root / sub
    if path.is_dir():
        return path
    hint = ""
    if root.name in (IMAGE_DIR, LABEL_DIR) or root.name in SPLITS:
        hint = f" {root} looks like a folder inside the dataset: pass the folder above it."
    elif any((child / sub).is_dir() for child in _subdirs(root)):
        inner = next(child for child in _subdirs(root) if (child / sub).is_dir())
        hint = f" Did you mean {inner}?"
    raise DataError(
        f"{root} has no {sub}/ folder; a Cityscapes root holds {IMAGE_DIR}/ and {LABEL_DIR}/. "
        f"Unzip {archive} into it, or point to the right folder.{hint}"
    )


def _subdirs(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.is_dir())
    except OSError:
        return []


def check_split(split: str) -> str:
    """``split`` if it is one of :data:`SPLITS`, else a ConfigError naming the valid ones."""
    if split not in SPLITS:
        raise ConfigError(
            f"unknown split {split!r}; use one of {', '.join(SPLITS)}.{close_matches(split, list(SPLITS))}"
        )
    return split


def index_split(root: Path, split: str, *, labels: bool) -> list[SampleFiles]:
    """List a split's frames (sorted by city, then name) with the label files that exist next to them.

    With ``labels=True`` every image must have its ``*_gtFine_labelIds.png`` (or ``*_labelTrainIds.png``).
    """
    check_split(split)
    image_root = root / IMAGE_DIR / split
    if not image_root.is_dir():
        present = [s for s in SPLITS if (root / IMAGE_DIR / s).is_dir()]
        raise DataError(
            f"the split folder {image_root} does not exist (splits present: {', '.join(present) or 'none'}). "
            "Choose another split or add its images."
        )
    label_root = root / LABEL_DIR / split
    samples: list[SampleFiles] = []
    for city_dir in _subdirs(image_root):
        names = sorted(n[: -len(IMAGE_SUFFIX)] for n in os.listdir(city_dir) if n.endswith(IMAGE_SUFFIX))
        gt_dir = label_root / city_dir.name
        listing = set(os.listdir(gt_dir)) if gt_dir.is_dir() else set()
        for name in names:
            samples.append(
                SampleFiles(
                    name=name,
                    city=city_dir.name,
                    image=city_dir / (name + IMAGE_SUFFIX),
                    label_ids=_present(gt_dir, listing, name + LABEL_SUFFIX),
                    train_ids=_present(gt_dir, listing, name + TRAIN_ID_SUFFIX),
                    instance_ids=_present(gt_dir, listing, name + INSTANCE_SUFFIX),
                )
            )
    if not samples:
        loose = [p.name for p in image_root.glob(f"*{IMAGE_SUFFIX}")]
        hint = f" Found {len(loose)} image(s) directly in it: move them into a folder per city." if loose else ""
        raise DataError(
            f"no images in {image_root} (looked for {{city}}/*{IMAGE_SUFFIX}). Check the dataset root and split.{hint}"
        )
    if labels:
        _require_dir(root, LABEL_DIR, "gtFine_trainvaltest.zip")
        if not label_root.is_dir():
            raise DataError(f"the label folder {label_root} does not exist. Unzip gtFine_trainvaltest.zip into {root}.")
        missing = [s for s in samples if s.label_ids is None and s.train_ids is None]
        if missing:
            first = missing[0]
            raise DataError(
                f"{len(missing)} of {len(samples)} images in {image_root} have no label file, e.g. {first.image} "
                f"needs {label_root / first.city / (first.name + LABEL_SUFFIX)}. Unzip gtFine_trainvaltest.zip "
                "into the dataset root (or remove the unlabelled images)."
            )
    return samples


def _present(folder: Path, listing: set[str], name: str) -> Path | None:
    return folder / name if name in listing else None


def read_label_ids(path: Path) -> np.ndarray:
    """A ``*_gtFine_labelIds.png`` -> H x W uint8, checked to hold only label ids 0..33."""
    ids = read_label(path)
    if ids.size and int(ids.max()) >= NUM_LABEL_IDS:
        bad = np.unique(ids[ids >= NUM_LABEL_IDS])
        raise DataError(
            f"{path} has values {_list(bad)} outside the label ids 0..{NUM_LABEL_IDS - 1}. It is not a labelIds "
            "file (a labelTrainIds or colour file renamed?): restore the original from gtFine_trainvaltest.zip."
        )
    return ids


def read_train_id_file(path: Path) -> np.ndarray:
    """A ``*_gtFine_labelTrainIds.png`` -> H x W uint8, checked to hold only 0..18 and 255."""
    ids = read_label(path)
    bad_mask = ~_VALID_TRAIN_IDS[ids]
    if bad_mask.any():
        raise DataError(
            f"{path} has values {_list(np.unique(ids[bad_mask]))} that are not train ids (0..{NUM_CLASSES - 1}, "
            f"{IGNORE_INDEX}). Delete the *_labelTrainIds.png files (fornet maps the labelIds itself) "
            "or regenerate them."
        )
    return ids


def _list(values: np.ndarray, n: int = 8) -> str:
    shown = ", ".join(str(int(v)) for v in values[:n])
    return shown + (f", ... ({len(values)} values)" if len(values) > n else "")


def check_size(array: np.ndarray, path: Path, image_shape: tuple[int, ...], image_path: Path) -> None:
    """DataError when a label/instance map and its image differ in size."""
    if array.shape[:2] != image_shape[:2]:
        (h, w), (ih, iw) = array.shape[:2], image_shape[:2]
        raise DataError(
            f"{path} is {w}x{h} but its image {image_path} is {iw}x{ih} (width x height). Labels must have the "
            "image's size: restore the matching files."
        )


def train_ids_agree(files: SampleFiles) -> bool:
    """Whether a sample's labelTrainIds file equals the official mapping of its labelIds on every pixel."""
    assert files.train_ids is not None and files.label_ids is not None
    theirs, ours = read_label(files.train_ids), ID_TO_TRAIN_ID[read_label(files.label_ids)]
    return theirs.shape == ours.shape and bool(np.array_equal(theirs, ours))


class CityscapesDataset(Dataset[dict[str, Any]]):
    """Cityscapes frames as dicts: ``image`` (``tv_tensors.Image``, 3 x H x W uint8), ``mask``
    (``tv_tensors.Mask``, H x W uint8 train ids, 255 = ignore), ``instance_ids`` (``tv_tensors.Mask``, H x W
    int32: label id, or id * 1000 + k) when loaded, ``name`` and ``path`` (of the image). ``transform`` gets
    the whole dict.

    Args:
        root: dataset folder; None reads ``$CITYSCAPES_DATASET``.
        split: ``train``, ``val`` or ``test``.
        labels: load the labels; None means yes except for ``test`` (whose public labels are blank).
        instances: load ``*_gtFine_instanceIds.png``; None means when every labelled sample has one.
        train_id_files: use ``*_gtFine_labelTrainIds.png`` when present and consistent (see the module doc).
    """

    def __init__(
        self,
        root: Path | str | None = None,
        split: str = "train",
        transform: Callable[[dict[str, Any]], Any] | None = None,
        *,
        labels: bool | None = None,
        instances: bool | None = None,
        train_id_files: bool = True,
    ) -> None:
        self.root = resolve_root(root)
        self.split = check_split(split)
        self.transform = transform
        self.labels = split != "test" if labels is None else labels
        self.samples = index_split(self.root, split, labels=self.labels)
        have_instances = self.labels and all(s.instance_ids is not None for s in self.samples)
        if instances and not have_instances:
            first = next((s for s in self.samples if s.instance_ids is None), self.samples[0])
            missing = self.root / LABEL_DIR / split / first.city / (first.name + INSTANCE_SUFFIX)
            raise DataError(
                f"instance ids were asked for but {missing} is missing. Unzip gtFine_trainvaltest.zip into the dataset root, or do not ask for instances."
            )
        self.instances = have_instances if instances is None else bool(instances)
        self.uses_train_id_files = self.labels and train_id_files and self._train_id_files_usable()

    def _train_id_files_usable(self) -> bool:
        if any(s.train_ids is None for s in self.samples):
            return False  # a partial set: the labelIds are the source of truth
        first = self.samples[0]
        if first.label_ids is not None and not train_ids_agree(first):
            warnings.warn(
                f"{first.train_ids} disagrees with the official mapping of {first.label_ids}; fornet maps the "
                "labelIds itself and ignores the *_labelTrainIds.png files of this split. Delete or regenerate them.",
                stacklevel=3,
            )
            return False
        return True

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        files = self.samples[index]
        image = read_image(files.image)
        sample: dict[str, Any] = {
            "image": tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1).contiguous()),
            "name": files.name,
            "path": str(files.image),
        }
        if self.labels:
            sample["mask"] = tv_tensors.Mask(torch.from_numpy(self.load_train_ids(files, image.shape)))
        if self.instances:
            assert files.instance_ids is not None
            inst = read_instance_ids(files.instance_ids)
            check_size(inst, files.instance_ids, image.shape, files.image)
            sample["instance_ids"] = tv_tensors.Mask(torch.from_numpy(inst))
        return self.transform(sample) if self.transform is not None else sample

    def load_train_ids(self, files: SampleFiles, image_shape: tuple[int, ...]) -> np.ndarray:
        """The sample's train-id map (H x W uint8), validated against the image size."""
        use_file = files.train_ids is not None and (self.uses_train_id_files or files.label_ids is None)
        path = files.train_ids if use_file else files.label_ids
        assert path is not None  # index_split(labels=True) guarantees one of the two
        ids = read_train_id_file(path) if use_file else ID_TO_TRAIN_ID[read_label_ids(path)]
        check_size(ids, path, image_shape, files.image)
        return ids

    def __repr__(self) -> str:
        return f"CityscapesDataset(root={str(self.root)!r}, split={self.split!r}, samples={len(self)})"
