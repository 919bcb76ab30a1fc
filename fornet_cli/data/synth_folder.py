"""The synthetic scenes in the folder layout (``fornet data synth --layout folder``)::

    OUT/classes.json
    OUT/{split}/images/NAME.png
    OUT/{split}/masks/NAME.png     class indices, 255 = ignore

The classes are Cityscapes' 19 training classes (the ``cityscapes`` preset), or fewer: a remap file is a
classes file whose entries also say which Cityscapes classes they take, ``"from": ["road", "sidewalk"]``;
Cityscapes classes that no entry takes become the ignore index.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..fsutil import atomic_write_text
from .classes import CITYSCAPES, ClassSet, cityscapes_classes, parse_classes, read_document
from .folder import IMAGES, MASKS
from .io import write_png
from .labels import CLASS_NAMES, ID_TO_TRAIN_ID

CLASSES_FILE = "classes.json"


@dataclass(frozen=True)
class SynthClasses:
    """The classes a folder-layout synthetic set is written with, and label id -> mask value."""

    classes: ClassSet
    lut: np.ndarray  # 256 uint8: Cityscapes label id -> class index, or the ignore index


def synth_classes(spec: str | Path | None) -> SynthClasses:
    """``None`` or ``cityscapes``: the 19 training classes; else a remap file (see the module doc)."""
    if spec is None or str(spec) == CITYSCAPES:
        return SynthClasses(cityscapes_classes(), ID_TO_TRAIN_ID.copy())
    path = Path(spec)
    classes, entries = parse_classes(read_document(path), str(path), allow=("from",))
    train_to_class = np.full(256, classes.ignore_index, dtype=np.uint8)
    taken: dict[str, str] = {}
    for index, entry in enumerate(entries):
        sources = entry.get("from")
        if not isinstance(sources, list) or not sources or not all(isinstance(s, str) for s in sources):
            raise DataError(f"{path}: class {classes.names[index]!r} needs \"from\": a list of the Cityscapes classes "
                            f"it takes, e.g. [\"road\", \"sidewalk\"] (they are: {', '.join(CLASS_NAMES)}).")
        for name in sources:
            if name not in CLASS_NAMES:
                raise DataError(f"{path}: {name!r} (in class {classes.names[index]!r}) is not a Cityscapes class; "
                                f"use one of {', '.join(CLASS_NAMES)}.")
            if name in taken:
                raise DataError(f"{path}: {name!r} is taken by both {taken[name]!r} and {classes.names[index]!r}.")
            taken[name] = classes.names[index]
            train_to_class[CLASS_NAMES.index(name)] = index
    return SynthClasses(classes, train_to_class[ID_TO_TRAIN_ID])


def refuse_foreign(out: Path) -> None:
    """fornet never writes a folder-layout set into a folder whose splits it did not generate."""
    for split in ("train", "val"):
        if (out / split).exists():
            raise DataError(f"{out} holds {split}/ that fornet did not generate; fornet will not write into it, even "
                            "with --overwrite. Choose another folder.")


def write_classes(root: Path, synth: SynthClasses) -> None:
    atomic_write_text(root / CLASSES_FILE, json.dumps(synth.classes.to_dict(), indent=2) + "\n")


def write_folder_frame(root: Path, split: str, name: str, image: np.ndarray, label_ids: np.ndarray,
                       synth: SynthClasses) -> None:
    """One frame: its picture and its mask of class indices."""
    write_png(root / split / IMAGES / f"{name}.png", image, compress_level=1)
    write_png(root / split / MASKS / f"{name}.png", synth.lut[label_ids])

