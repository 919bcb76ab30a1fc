"""``fornet data check --data folder``: every image and mask of a folder data set, checked and counted.

Like the Cityscapes check (:mod:`.check`), it carries on past a bad file and lists every problem.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from .check import CheckReport, Progress, SplitReport
from .cityscapes import check_size
from .classes import ClassSet, resolve_classes
from .folder import IMAGES, FolderSample, check_root, index_folder_split, orphan_masks, read_mask, splits_present
from .io import read_image


def check_folder_dataset(
    root: Path | str | None, classes: str | Path | None = None, splits: list[str] | None = None,
    progress: Progress | None = None,
) -> CheckReport:
    """Check ``splits`` (default: every split folder with images/) of the folder data set at ``root``.

    Raises DataError only when there is nothing to look at (no root, no split folder, no usable classes file);
    everything else lands in the report's ``problems`` (or ``notes``).
    """
    path = check_root(root)
    class_set = resolve_classes(classes, path)
    report = CheckReport(path, classes=class_set.to_dict())
    for split in splits or splits_present(path):
        report.splits.append(_check_split(path, split, class_set, report, progress))
    return report


def _check_split(root: Path, split: str, classes: ClassSet, report: CheckReport, progress: Progress | None) -> SplitReport:
    n = classes.num_classes
    out = SplitReport(split, class_pixels=[0] * n, class_images=[0] * n, label_pixels=None, class_names=classes.names)
    try:
        samples = index_folder_split(root, split, labels=False)
    except DataError as exc:
        report.problems.append(str(exc))
        return out
    out.images = len(samples)
    orphans = orphan_masks(root, split)
    if orphans:
        report.notes.append(f"{len(orphans)} mask(s) in {root / split} have no image, e.g. {orphans[0]} (expected "
                            f"{root / split / IMAGES / orphans[0].stem}.png or .jpg).")
    for done, sample in enumerate(samples, 1):
        _check_sample(sample, root, split, classes, out, report)
        if progress is not None:
            progress(split, done, len(samples))
    return out


def _check_sample(sample: FolderSample, root: Path, split: str, classes: ClassSet, out: SplitReport,
                  report: CheckReport) -> None:
    try:
        image = read_image(sample.image)
    except DataError as exc:
        report.problems.append(str(exc))
        return
    h, w = image.shape[:2]
    out.sizes[f"{w}x{h}"] = out.sizes.get(f"{w}x{h}", 0) + 1
    mask_path = root / split / "masks" / f"{sample.name}.png"
    if not mask_path.is_file():
        report.problems.append(f"{sample.image} has no mask: add {mask_path} (a single-channel PNG of class indices).")
        return
    try:
        mask = read_mask(mask_path, classes)
        check_size(mask, mask_path, image.shape, sample.image)
    except DataError as exc:
        report.problems.append(str(exc))
        return
    out.count(mask)
