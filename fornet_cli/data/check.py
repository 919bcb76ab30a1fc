"""Validate a Cityscapes-layout folder file by file and count its classes (``fornet data check``).

Unlike :class:`~fornet_cli.data.cityscapes.CityscapesDataset`, which stops at the first bad file, this decodes
every image and label, collects every problem and carries on.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from .cityscapes import (
    IMAGE_DIR,
    IMAGE_SUFFIX,
    INSTANCE_SUFFIX,
    LABEL_DIR,
    LABEL_SUFFIX,
    SPLITS,
    TRAIN_ID_SUFFIX,
    SampleFiles,
    check_size,
    check_split,
    index_split,
    read_label_ids,
    read_train_id_file,
    resolve_root,
)
from .io import read_image, read_instance_ids
from .labels import CLASS_NAMES, ID_TO_TRAIN_ID, IGNORE_INDEX, NUM_CLASSES, NUM_LABEL_IDS

Progress = Callable[[str, int, int], None]  # (split, done, total)


@dataclass
class SplitReport:
    """Counts for one split; pixel counts are over the labelled images that could be read. ``class_names``:
    Cityscapes' 19 training classes, or a folder data set's (then ``label_pixels`` stays None)."""

    split: str
    images: int = 0
    labelled: int = 0
    with_instances: int = 0
    sizes: dict[str, int] = field(default_factory=dict)  # "WIDTHxHEIGHT" -> images
    class_pixels: list[int] = field(default_factory=lambda: [0] * NUM_CLASSES)
    class_images: list[int] = field(default_factory=lambda: [0] * NUM_CLASSES)  # images showing each class
    ignored_pixels: int = 0
    label_pixels: list[int] | None = field(default_factory=lambda: [0] * NUM_LABEL_IDS)  # per label id 0..33
    class_names: tuple[str, ...] = CLASS_NAMES

    def count(self, class_ids: np.ndarray) -> None:
        """Add one labelled image's mask (class indices, 255 = ignore)."""
        counts = np.bincount(class_ids.ravel(), minlength=256)
        n = len(self.class_names)
        self.labelled += 1
        self.class_pixels = [a + int(b) for a, b in zip(self.class_pixels, counts[:n])]
        self.class_images = [a + int(b > 0) for a, b in zip(self.class_images, counts[:n])]
        self.ignored_pixels += int(counts[IGNORE_INDEX])

    @property
    def labelled_pixels(self) -> int:
        return sum(self.class_pixels) + self.ignored_pixels

    def to_dict(self) -> dict[str, object]:
        total = max(self.labelled_pixels, 1)
        return {
            "images": self.images,
            "labelled": self.labelled,
            "with_instances": self.with_instances,
            "sizes": self.sizes,
            "classes": {
                name: {"pixels": px, "fraction": px / total, "images": n}
                for name, px, n in zip(self.class_names, self.class_pixels, self.class_images)
            },
            "ignored_pixels": self.ignored_pixels,
            "ignored_fraction": self.ignored_pixels / total,
            "label_id_pixels": self.label_pixels,
        }


@dataclass
class CheckReport:
    root: Path
    classes: dict[str, object] | None = None  # a folder data set's classes (classes.json's document)
    splits: list[SplitReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # things that stop training or evaluation
    notes: list[str] = field(default_factory=list)  # worth knowing, harmless

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, object]:
        return {
            "root": str(self.root),
            **({"classes": self.classes} if self.classes is not None else {}),
            "ok": self.ok,
            "splits": {s.split: s.to_dict() for s in self.splits},
            "problems": self.problems,
            "notes": self.notes,
        }


def check_dataset(
    root: Path | str | None = None, splits: list[str] | None = None, progress: Progress | None = None
) -> CheckReport:
    """Check every file of ``splits`` (default: those present) under ``root`` (default: ``$CITYSCAPES_DATASET``).

    Raises DataError only when there is no dataset to look at (root or ``leftImg8bit/`` missing); every other
    finding lands in the report's ``problems`` (or ``notes``).
    """
    path = resolve_root(root)
    report = CheckReport(path)
    present = [s for s in SPLITS if (path / IMAGE_DIR / s).is_dir()]
    others = sorted(p.name for p in (path / IMAGE_DIR).iterdir() if p.is_dir() and p.name not in SPLITS)
    if others:
        report.notes.append(f"{path / IMAGE_DIR} also holds {', '.join(others)}; only {', '.join(SPLITS)} are checked.")
    wanted = [check_split(s) for s in splits] if splits else present
    if not wanted:
        report.problems.append(f"{path / IMAGE_DIR} has none of the split folders {', '.join(SPLITS)}.")
    has_gt = (path / LABEL_DIR).is_dir()
    if not has_gt:
        report.problems.append(
            f"{path} has no {LABEL_DIR}/ folder, so no image has labels. Unzip gtFine_trainvaltest.zip into it."
        )
    for split in wanted:
        report.splits.append(_check_split(path, split, has_gt, report, progress))
    return report


def _check_split(root: Path, split: str, has_gt: bool, report: CheckReport, progress: Progress | None) -> SplitReport:
    out = SplitReport(split)
    try:
        samples = index_split(root, split, labels=False)
    except DataError as exc:
        report.problems.append(str(exc))
        return out
    out.images = len(samples)
    labelled = split != "test"  # the public test labels are blank
    if labelled and has_gt:
        _note_orphans(root, split, samples, report)
    for done, files in enumerate(samples, 1):
        _check_sample(root, files, split, labelled and has_gt, out, report)
        if progress is not None:
            progress(split, done, len(samples))
    return out


def _check_sample(
    root: Path, files: SampleFiles, split: str, labelled: bool, out: SplitReport, report: CheckReport
) -> None:
    try:
        image = read_image(files.image)
    except DataError as exc:
        report.problems.append(str(exc))
        return
    h, w = image.shape[:2]
    out.sizes[f"{w}x{h}"] = out.sizes.get(f"{w}x{h}", 0) + 1
    if not labelled:
        return
    if files.label_ids is None:
        expected = root / LABEL_DIR / split / files.city / (files.name + LABEL_SUFFIX)
        if files.train_ids is None:
            report.problems.append(
                f"{files.image} has no label file {expected}. Restore it from gtFine_trainvaltest.zip."
            )
            return
        report.notes.append(f"{files.image} has only a labelTrainIds file; {expected.name} is missing.")
    try:
        label_ids = None
        if files.label_ids is not None:
            label_ids = read_label_ids(files.label_ids)
            check_size(label_ids, files.label_ids, image.shape, files.image)
            train_ids = ID_TO_TRAIN_ID[label_ids]
        if files.train_ids is not None:
            stored = read_train_id_file(files.train_ids)
            check_size(stored, files.train_ids, image.shape, files.image)
            if label_ids is None:
                train_ids = stored
            elif not np.array_equal(stored, train_ids):
                n = int((stored != train_ids).sum())
                report.problems.append(
                    f"{files.train_ids} disagrees with the official mapping of {files.label_ids.name} at {n} pixels. "
                    "Delete the *_labelTrainIds.png files (fornet maps the labelIds itself) or regenerate them."
                )
        if files.instance_ids is not None:
            _check_instances(files, image.shape, label_ids, report)
            out.with_instances += 1
    except DataError as exc:
        report.problems.append(str(exc))
        return
    out.count(train_ids)
    if label_ids is not None and out.label_pixels is not None:
        ids = np.bincount(label_ids.ravel(), minlength=NUM_LABEL_IDS)
        out.label_pixels = [a + int(b) for a, b in zip(out.label_pixels, ids)]


def _check_instances(
    files: SampleFiles, shape: tuple[int, ...], label_ids: np.ndarray | None, report: CheckReport
) -> None:
    assert files.instance_ids is not None
    inst = read_instance_ids(files.instance_ids)
    check_size(inst, files.instance_ids, shape, files.image)
    if label_ids is None:
        return
    semantic = np.where(inst >= 1000, inst // 1000, inst)  # id * 1000 + k for instances, the plain id otherwise
    wrong = semantic != label_ids
    if wrong.any():
        report.problems.append(
            f"{files.instance_ids} disagrees with {files.label_ids} at {int(wrong.sum())} pixels (an instance id "
            "must be the label id, or label id * 1000 + k). Restore both files from gtFine_trainvaltest.zip."
        )


def _note_orphans(root: Path, split: str, samples: list[SampleFiles], report: CheckReport) -> None:
    """Label files whose image is missing: harmless (never loaded) but a sign of a broken unzip."""
    names = {s.name for s in samples}
    suffixes = (LABEL_SUFFIX, TRAIN_ID_SUFFIX, INSTANCE_SUFFIX)
    orphans: list[str] = []
    gt_root = root / LABEL_DIR / split
    if not gt_root.is_dir():
        return
    for city in sorted(p for p in gt_root.iterdir() if p.is_dir()):
        for name in sorted(os.listdir(city)):
            stem = next((name[: -len(s)] for s in suffixes if name.endswith(s)), None)
            if stem is not None and stem not in names:
                orphans.append(str(city / name))
    if orphans:
        report.notes.append(
            f"{len(orphans)} label file(s) in {gt_root} have no image, e.g. {orphans[0]} "
            f"(expected {IMAGE_DIR}/{split}/<city>/<name>{IMAGE_SUFFIX})."
        )
