"""Your own data set in the common images/ + masks/ layout (SMP and MMSegmentation examples use it)::

    DIR/classes.json                  names, colours, ignore index (fornet_cli/data/classes.py)
    DIR/{split}/images/NAME.png|jpg   the pictures
    DIR/{split}/masks/NAME.png        one class index per pixel (single-channel PNG), same stem as the image

Masks come out with the ignore index as 255, as the loss and the scores expect. Building the index lists
folders only; a mask is decoded and checked (its values, its size) when its sample is loaded, and
``fornet data check`` checks every file up front.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from ..errors import DataError
from .cityscapes import check_size
from .classes import ClassSet, bad_values, lookup_table
from .io import read_image, read_label

IMAGES, MASKS = "images", "masks"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MASK_SUFFIX = ".png"


@dataclass(frozen=True)
class FolderSample:
    """One picture and its mask (None when the split is read without labels)."""

    name: str  # the file stem
    image: Path
    mask: Path | None


def check_root(root: Path | str | None) -> Path:
    """The data set folder, checked to exist and to hold at least one ``{split}/images/`` folder."""
    if root is None or str(root) == "":
        raise DataError("--data folder needs --root DIR: the folder holding classes.json and train/, val/ "
                        f"(each with {IMAGES}/ and {MASKS}/).")
    path = Path(root).expanduser()
    if not path.is_dir():
        what = "is a file" if path.exists() else "does not exist"
        raise DataError(f"The data set folder {path} {what}. Pass the folder holding train/{IMAGES}/, "
                        f"train/{MASKS}/, val/... and classes.json.")
    if not splits_present(path):
        hint = f" It looks like a split folder: pass {path.parent}." if path.name in ("train", "val", IMAGES) else ""
        raise DataError(f"{path} has no {{split}}/{IMAGES}/ folder (e.g. train/{IMAGES}/); a folder data set holds "
                        f"train/{IMAGES}/ + train/{MASKS}/, val/{IMAGES}/ + val/{MASKS}/ and classes.json.{hint}")
    return path


def splits_present(root: Path) -> list[str]:
    """The split folders of ``root`` that hold an images/ folder, sorted."""
    try:
        return sorted(p.name for p in root.iterdir() if (p / IMAGES).is_dir())
    except OSError:
        return []


def _stems(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    """NAME -> file for the files directly in ``folder`` with one of ``suffixes``; two files of one stem are refused."""
    found: dict[str, Path] = {}
    for name in sorted(os.listdir(folder)):
        path = folder / name
        if name.startswith(".") or Path(name).suffix.lower() not in suffixes or not path.is_file():
            continue
        other = found.setdefault(path.stem, path)
        if other != path:
            raise DataError(f"{other} and {path} share the name {path.stem!r}; images and masks are matched by name. "
                            "Rename or remove one.")
    return found


def index_folder_split(root: Path, split: str, *, labels: bool = True) -> list[FolderSample]:
    """The split's samples, sorted by name; with ``labels`` every image must have its mask."""
    images_dir, masks_dir = root / split / IMAGES, root / split / MASKS
    if not images_dir.is_dir():
        present = ", ".join(splits_present(root)) or "none"
        raise DataError(f"The split folder {images_dir} does not exist (splits present: {present}). Choose another "
                        "split or add its images.")
    images = _stems(images_dir, IMAGE_SUFFIXES)
    if not images:
        raise DataError(f"The split {split!r} is empty: {images_dir} holds no {', '.join(IMAGE_SUFFIXES)} images. "
                        "Add its images (and masks), or choose another split.")
    masks = _stems(masks_dir, (MASK_SUFFIX,)) if masks_dir.is_dir() else {}
    if labels:
        missing = [name for name in images if name not in masks]
        if missing:
            shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
            raise DataError(
                f"{len(missing)} of {len(images)} images in {images_dir} have no mask ({shown}): "
                f"{images[missing[0]].name} needs {masks_dir / (missing[0] + MASK_SUFFIX)}. Add the masks (single-"
                "channel PNGs of class indices, named like the images), or remove the unlabelled images."
            )
    return [FolderSample(name, path, masks.get(name) if labels else None) for name, path in images.items()]


def orphan_masks(root: Path, split: str) -> list[Path]:
    """Masks of ``split`` without an image (never loaded; a sign of a broken copy)."""
    masks_dir = root / split / MASKS
    if not masks_dir.is_dir():
        return []
    images = _stems(root / split / IMAGES, IMAGE_SUFFIXES)
    return [p for name, p in _stems(masks_dir, (MASK_SUFFIX,)).items() if name not in images]


def read_mask(path: Path, classes: ClassSet) -> np.ndarray:
    """A mask -> ``H x W`` uint8 class indices, 255 = ignore; DataError naming the file and any bad value."""
    mask = read_label(path)
    bad = bad_values(mask, classes)
    if bad:
        shown = ", ".join(map(str, bad[:8])) + (", ..." if len(bad) > 8 else "")
        raise DataError(
            f"{path} holds the value(s) {shown}, which are not class indices (0..{classes.num_classes - 1} in "
            f"{classes.source or 'the classes file'}) nor its ignore index {classes.ignore_index}. Fix the mask, or "
            "add the missing classes to the classes file."
        )
    if classes.ignore_index == 255:
        return mask
    return lookup_table(classes).astype(np.uint8)[mask]  # the ignore index becomes 255


class FolderDataset(Dataset[dict[str, Any]]):
    """A folder data set's split as dicts: ``image`` (``tv_tensors.Image``, 3 x H x W uint8), ``mask``
    (``tv_tensors.Mask``, H x W uint8 class indices, 255 = ignore), ``name`` and ``path`` (of the image),
    like :class:`~fornet_cli.data.cityscapes.CityscapesDataset`. ``transform`` gets the whole dict."""

    def __init__(
        self,
        root: Path | str | None,
        split: str,
        classes: ClassSet,
        transform: Callable[[dict[str, Any]], Any] | None = None,
        *,
        labels: bool = True,
    ) -> None:
        self.root = check_root(root)
        self.split, self.classes, self.transform, self.labels = split, classes, transform, labels
        self.samples = index_folder_split(self.root, split, labels=labels)

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
            sample["mask"] = tv_tensors.Mask(torch.from_numpy(self.load_mask(files, image.shape)))
        return self.transform(sample) if self.transform is not None else sample

    def load_mask(self, files: FolderSample, image_shape: tuple[int, ...]) -> np.ndarray:
        """The sample's mask (H x W uint8, 255 = ignore), checked against the classes and the image size."""
        assert files.mask is not None
        mask = read_mask(files.mask, self.classes)
        check_size(mask, files.mask, image_shape, files.image)
        return mask

    def __repr__(self) -> str:
        return f"FolderDataset(root={str(self.root)!r}, split={self.split!r}, samples={len(self)})"


class FolderMaskIndex:
    """Finds the mask of an input image: ``ROOT/{split}/masks/NAME.png`` by name when ``root`` is given
    (indexed once), else next to the image (``.../images/NAME.ext`` -> ``.../masks/NAME.png``)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._index: dict[str, list[Path]] = {}
        if root is not None:
            for split in splits_present(check_root(root)):
                folder = root / split / MASKS
                if folder.is_dir():
                    for name, path in _stems(folder, (MASK_SUFFIX,)).items():
                        self._index.setdefault(name, []).append(path)

    def find(self, image: Path) -> Path | None:
        if self.root is not None:
            found = self._index.get(image.stem, [])
            if len(found) > 1:
                raise DataError(f"{image} matches several masks under {self.root} ({found[0]}, {found[1]}): names must "
                                "be unique across the splits to find a mask by name.")
            return found[0] if found else None
        if image.parent.name != IMAGES:
            return None
        mask = image.parent.parent / MASKS / (image.stem + MASK_SUFFIX)
        return mask if mask.is_file() else None
