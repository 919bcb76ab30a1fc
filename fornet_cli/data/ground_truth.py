"""Finding the ground truth of an input image: next to it in the Cityscapes layout, or under a given root.

::

    .../leftImg8bit/{split}/{city}/{name}_leftImg8bit.png  ->  .../gtFine/{split}/{city}/{name}_gtFine_labelIds.png
    --gt ROOT: ROOT/gtFine/**/{name}_gtFine_labelIds.png, {name} = the image's file name without
               "_leftImg8bit" and its extension

``*_gtFine_labelTrainIds.png`` is used when the labelIds file is absent. Ground truth comes out as label ids.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DataError
from .cityscapes import (
    IMAGE_DIR,
    LABEL_DIR,
    LABEL_SUFFIX,
    TRAIN_ID_SUFFIX,
    check_size,
    read_label_ids,
    read_train_id_file,
)
from .labels import TRAIN_ID_TO_ID

_IMAGE_MARK = "_" + IMAGE_DIR  # "_leftImg8bit"


def frame_name(image: Path) -> str:
    """``aachen_000000_000019`` for ``aachen_000000_000019_leftImg8bit.png``; the stem for other names."""
    stem = image.name.rsplit(".", 1)[0] if "." in image.name else image.name
    return stem[: -len(_IMAGE_MARK)] if stem.endswith(_IMAGE_MARK) else stem


class GroundTruthIndex:
    """Looks up label files: under ``root`` when given (indexed once), else next to the image's own
    Cityscapes tree."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = None if root is None else Path(root).expanduser()
        self._index: dict[str, list[Path]] = {}
        if self.root is not None:
            self._build(self.root)

    def _build(self, root: Path) -> None:
        if not root.is_dir():
            raise DataError(f"the ground-truth folder {root} does not exist. Pass a Cityscapes root holding {LABEL_DIR}/.")
        labels = root / LABEL_DIR
        if not labels.is_dir():
            hint = f" {root} looks like a folder inside the dataset: pass the folder above it." if root.name in (
                LABEL_DIR, IMAGE_DIR, "train", "val", "test") else ""
            raise DataError(
                f"{root} has no {LABEL_DIR}/ folder; --gt takes a Cityscapes root (ROOT/{LABEL_DIR}/<split>/<city>/"
                f"*{LABEL_SUFFIX}).{hint}"
            )
        for dirpath, dirnames, filenames in os.walk(labels):
            dirnames.sort()
            for name in sorted(filenames):
                for suffix in (LABEL_SUFFIX, TRAIN_ID_SUFFIX):
                    if name.endswith(suffix):
                        self._index.setdefault(name[: -len(suffix)], []).append(Path(dirpath, name))
        if not self._index:
            raise DataError(f"no *{LABEL_SUFFIX} files under {labels}. Unzip gtFine_trainvaltest.zip into {root}.")

    def find(self, image: Path) -> Path | None:
        """The label file of ``image`` (labelIds preferred), or None when there is none."""
        name = frame_name(image)
        if self.root is not None:
            found = self._index.get(name, [])
            ids = [p for p in found if p.name.endswith(LABEL_SUFFIX)] or found
            if len(ids) > 1:
                raise DataError(
                    f"{image} matches several ground-truth files under {self.root} ({ids[0]}, {ids[1]}). "
                    "Point --gt to a root where frame names are unique."
                )
            return ids[0] if ids else None
        # <root>/leftImg8bit/<split>/<city>/<file>: the labels are at <root>/gtFine/<split>/<city>/
        parents = image.parents
        if len(parents) < 4 or parents[2].name != IMAGE_DIR:
            return None
        folder = parents[3] / LABEL_DIR / parents[1].name / parents[0].name
        for suffix in (LABEL_SUFFIX, TRAIN_ID_SUFFIX):
            path = folder / (name + suffix)
            if path.is_file():
                return path
        return None


def read_ground_truth(path: Path, image_shape: tuple[int, ...], image_path: Path) -> np.ndarray:
    """A label file as ``H x W`` uint8 label ids (0..33), checked against its image's size."""
    if path.name.endswith(TRAIN_ID_SUFFIX):
        ids = TRAIN_ID_TO_ID[read_train_id_file(path)]  # 255 (ignore) -> 0 "unlabeled", not evaluated
    else:
        ids = read_label_ids(path)
    check_size(ids, path, image_shape, image_path)
    return ids
