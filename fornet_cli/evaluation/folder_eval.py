"""Evaluating a folder of predicted class-index PNGs against a folder data set's masks.

A prediction is matched to a mask by name: the one PNG named ``NAME.png`` anywhere below the predictions
folder (what ``fornet predict DIR/val/images --out PRED`` writes). Scores are counted in the data set's label
space (evaluation/space.py), streamed image by image like :func:`.evaluate.evaluate_predictions`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data.classes import ClassSet
from ..data.folder import FolderDataset, FolderSample, read_mask
from ..data.label_png import read_label_png
from ..errors import DataError
from .counting import image_statistics
from .evaluate import EvaluationResult, Progress
from .hard_regions import HardRegionConfig, HardRegionMetrics
from .metrics import SegmentationMetrics
from .space import LabelSpace, space_for


@dataclass(frozen=True)
class FolderPair:
    sample: FolderSample
    prediction: Path


def match_folder_predictions(pred_dir: Path, samples: list[FolderSample]) -> list[FolderPair]:
    """Each sample's prediction ``NAME.png`` below ``pred_dir``; DataError naming what is missing or ambiguous."""
    if not pred_dir.is_dir():
        raise DataError(f"The predictions folder {pred_dir} does not exist.")
    found: dict[str, list[Path]] = {}
    for dirpath, dirnames, filenames in os.walk(pred_dir):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(".png"):
                found.setdefault(name[:-4], []).append(Path(dirpath, name))
    missing = [s.name for s in samples if s.name not in found]
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise DataError(f"No prediction for {len(missing)} of {len(samples)} images ({shown}): a prediction is the "
                        f"PNG named like its mask (NAME.png) below {pred_dir}. Predict every image of the split, e.g. "
                        "`fornet predict ROOT/val/images --out PRED`.")
    twice = [s.name for s in samples if len(found[s.name]) > 1]
    if twice:
        a, b = found[twice[0]][:2]
        raise DataError(f"{len(twice)} images have several predictions, e.g. {a} and {b}. Keep one class-index PNG per "
                        "image below the predictions folder (other formats in other folders).")
    return [FolderPair(s, found[s.name][0]) for s in samples]


def evaluate_folder_predictions(
    pred_dir: str | Path,
    root: str | Path,
    split: str,
    classes: ClassSet,
    *,
    hard: HardRegionConfig | None = HardRegionConfig(),
    per_image: bool = False,
    progress: Progress | None = None,
) -> EvaluationResult:
    """Score the class-index PNGs in ``pred_dir`` against the masks of ``root``'s ``split``."""
    start = time.perf_counter()
    data = FolderDataset(root, split, classes)
    pairs = match_folder_predictions(Path(pred_dir), data.samples)
    space = space_for(classes.names)
    metrics = SegmentationMetrics(per_image=per_image, space=space)
    hard_metrics = HardRegionMetrics(hard, space) if hard is not None else None
    for i, pair in enumerate(pairs):
        _count(pair, data, space, metrics, hard_metrics)
        if progress is not None:
            progress(i + 1, len(pairs))
    source = {"kind": "predictions", "predictions": str(pred_dir), "ground_truth": str(root), "split": split,
              "label_set": space.kind, "classes": classes.source}
    return EvaluationResult(metrics.compute(), hard_metrics.compute() if hard_metrics else None, source,
                            time.perf_counter() - start)


def _count(pair: FolderPair, data: FolderDataset, space: LabelSpace, metrics: SegmentationMetrics,
           hard: HardRegionMetrics | None) -> None:
    pred = read_label_png(pair.prediction, "prediction")
    if pred.dtype != torch.uint8:
        raise DataError(f"The prediction {pair.prediction} is a 16-bit PNG; predictions are 8-bit class indices.")
    assert pair.sample.mask is not None
    gt = torch.from_numpy(read_mask(pair.sample.mask, data.classes))  # checks its values
    if gt.shape != pred.shape:
        raise DataError(f"The prediction {pair.prediction} is {pred.shape[1]}x{pred.shape[0]} (width x height) but "
                        f"its mask {pair.sample.mask} is {gt.shape[1]}x{gt.shape[0]}. Predict at the image's size.")
    gt_ids = space.from_train_ids(gt, f"mask {pair.sample.mask}")
    pred_ids = space.from_train_ids(pred, f"prediction {pair.prediction}")
    conf = hard.update(pred_ids, gt_ids) if hard is not None else None
    metrics.add(image_statistics(pred_ids, gt_ids, None, name=pair.sample.name, confusion=conf, n=space.size))
