"""Cityscapes pixel-level scores, computed exactly as the official evaluator computes them, but vectorised:
class and category IoU, iIoU, accuracies, and the streaming :class:`SegmentationMetrics` accumulator.

The counting (label-id space, confusion matrix, instance sums) is in :mod:`fornet_cli.evaluation.counting`,
whose docstring gives the official definitions every score here follows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from ..data.labels import EVAL_LABELS, INSTANCE_CLASS_NAMES
from ..errors import DataError
from ..fmt import nan_to_none, none_if_nan
from .counting import (
    _ID_LABELS,
    EVALUATED_ID,
    INSTANCE_CATEGORIES,
    INSTANCE_CLASS_IDS,
    SCORED_CATEGORIES,
    ImageStatistics,
    InstanceCounts,
    N,
    image_statistics,
    widen,
)
from .space import CITYSCAPES_SPACE, LabelSpace

# --------------------------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------------------------


def _ratio(num: float, den: float) -> float:
    return float(num) / den if den else float("nan")


def nanmean(values: Sequence[float]) -> float:
    """Mean of the defined (non-NaN) values; NaN when none is defined (the official ``getScoreAverage``)."""
    good = [v for v in values if not math.isnan(v)]
    return sum(good) / len(good) if good else float("nan")


def class_iou(conf: np.ndarray, space: LabelSpace = CITYSCAPES_SPACE) -> dict[str, float]:
    """Per-class IoU from a confusion matrix of ``space`` (by default the official IoU of the 19 evaluated
    classes from a 34 x 34 label-id confusion matrix)."""
    conf = np.asarray(conf, dtype=np.int64)
    tp = np.diag(conf)
    fn = conf.sum(1) - tp
    fp = conf[space.evaluated].sum(0) - tp  # evaluated rows other than the class itself
    return {name: _ratio(tp[i], tp[i] + fp[i] + fn[i]) for name, i in zip(space.class_names, space.class_ids)}


def category_iou(conf: np.ndarray) -> dict[str, float]:
    """Official category IoU (categories with at least one evaluated label)."""
    conf = np.asarray(conf, dtype=np.int64)
    out = {}
    for cat in SCORED_CATEGORIES:
        ids = [lb.id for lb in EVAL_LABELS if lb.category == cat]
        other_rows = [i for i in range(N) if EVALUATED_ID[i] and i not in ids]
        tp = conf[np.ix_(ids, ids)].sum()
        fn = conf[ids].sum() - tp
        fp = conf[np.ix_(other_rows, ids)].sum()
        out[cat] = _ratio(tp, tp + fp + fn)
    return out


def class_iiou(conf: np.ndarray, inst: InstanceCounts) -> dict[str, float]:
    """Official instance-weighted IoU of the 8 instance classes."""
    conf = np.asarray(conf, dtype=np.int64)
    fp = conf[EVALUATED_ID].sum(0) - np.diag(conf)
    out = {}
    for name, i in zip(INSTANCE_CLASS_NAMES, INSTANCE_CLASS_IDS):
        tp, fn = inst.tp_weighted[i], inst.fn_weighted[i]
        out[name] = _ratio(tp, tp + fp[i] + fn)
    return out


def category_iiou(conf: np.ndarray, inst: InstanceCounts) -> dict[str, float]:
    """Official instance-weighted IoU of the categories whose labels all have instances."""
    conf = np.asarray(conf, dtype=np.int64)
    out = {}
    for k, (cat, ids) in enumerate(INSTANCE_CATEGORIES.items()):
        rows = [lb.id for lb in _ID_LABELS if not lb.ignore_in_eval and lb.category != cat]
        fp = conf[np.ix_(rows, list(ids))].sum()
        tp, fn = inst.cat_tp_weighted[k], inst.cat_fn_weighted[k]
        out[cat] = _ratio(tp, tp + fp + fn)
    return out


@dataclass(frozen=True)
class ImageScore:
    """Scores of a single image (from its own confusion matrix)."""

    name: str
    valid_pixels: int
    pixel_accuracy: float
    miou: float
    class_iou: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "valid_pixels": self.valid_pixels,
            "pixel_accuracy": none_if_nan(self.pixel_accuracy),
            "miou": none_if_nan(self.miou),
            "class_iou": nan_to_none(self.class_iou),
        }


@dataclass(frozen=True)
class SegmentationScores:
    """Every pixel-level score. ``miou`` etc. average the defined (non-NaN) entries, as officially.
    ``category_iou`` is None outside Cityscapes' label set (see ``space``)."""

    class_iou: dict[str, float]
    category_iou: dict[str, float] | None
    class_iiou: dict[str, float] | None  # None when no instanceIds were given
    category_iiou: dict[str, float] | None
    class_accuracy: dict[str, float]
    pixel_accuracy: float
    valid_pixels: int
    num_images: int
    confusion: np.ndarray  # confusion matrix of the space's ids (34 x 34 label ids; rows ground truth)
    per_image: tuple[ImageScore, ...] | None = None
    space: LabelSpace = CITYSCAPES_SPACE

    @property
    def miou(self) -> float:
        return nanmean(list(self.class_iou.values()))

    @property
    def category_miou(self) -> float:
        return nanmean(list(self.category_iou.values())) if self.category_iou is not None else float("nan")

    @property
    def miiou(self) -> float:
        return nanmean(list(self.class_iiou.values())) if self.class_iiou is not None else float("nan")

    @property
    def category_miiou(self) -> float:
        return nanmean(list(self.category_iiou.values())) if self.category_iiou is not None else float("nan")

    @property
    def mean_accuracy(self) -> float:
        return nanmean(list(self.class_accuracy.values()))

    def train_id_confusion(self) -> np.ndarray:
        """N x (N + 1) confusion in class (train-id) order; the last column counts predictions of
        non-evaluated ids."""
        ids = list(self.space.class_ids)
        rows = self.confusion[ids]
        evaluated = rows[:, ids]
        return np.concatenate([evaluated, (rows.sum(1) - evaluated.sum(1))[:, None]], axis=1)

    def to_dict(self, confusion: bool = True) -> dict[str, Any]:
        """JSON-ready: NaN becomes None (null), like the official result file."""
        out: dict[str, Any] = {
            "miou": none_if_nan(self.miou),
            "miiou": none_if_nan(self.miiou),
            "category_miou": none_if_nan(self.category_miou),
            "category_miiou": none_if_nan(self.category_miiou),
            "pixel_accuracy": none_if_nan(self.pixel_accuracy),
            "mean_accuracy": none_if_nan(self.mean_accuracy),
            "class_iou": nan_to_none(self.class_iou),
            "class_iiou": None if self.class_iiou is None else nan_to_none(self.class_iiou),
            "category_iou": None if self.category_iou is None else nan_to_none(self.category_iou),
            "category_iiou": None if self.category_iiou is None else nan_to_none(self.category_iiou),
            "class_accuracy": nan_to_none(self.class_accuracy),
            "valid_pixels": self.valid_pixels,
            "num_images": self.num_images,
            "label_set": self.space.to_dict(),
        }
        if confusion:
            names = list(self.space.class_names)
            out["confusion_train_ids"] = {
                "rows": names,
                "columns": [*names, "other"],
                "counts": self.train_id_confusion().tolist(),
            }
        if self.per_image is not None:
            out["per_image"] = [s.to_dict() for s in self.per_image]
        return out


def _image_score(stats: ImageStatistics, space: LabelSpace) -> ImageScore:
    conf = stats.confusion
    valid = int(conf[space.evaluated].sum())
    correct = int(np.diag(conf)[space.evaluated].sum())
    iou = class_iou(conf, space)
    return ImageScore(stats.name, valid, _ratio(correct, valid), nanmean(list(iou.values())), iou)


class SegmentationMetrics:
    """Streaming accumulator of the official Cityscapes scores.

    >>> metrics = SegmentationMetrics()
    >>> metrics.update(pred, target, instance_ids)        # per batch, any device
    >>> scores = metrics.compute()

    ``space="train_id"`` takes predictions and targets in train ids (255 = ignore); the default takes
    label ids (0..33) like the official evaluator. ``per_image=True`` keeps each image's scores. ``space``: the
    ids counted (Cityscapes' label ids, or a plain class set's: evaluation/space.py).
    """

    def __init__(self, per_image: bool = False, space: LabelSpace = CITYSCAPES_SPACE) -> None:
        self.per_image = per_image
        self.space = space
        self.reset()

    def reset(self) -> None:
        n = self.space.size
        self._confusion = np.zeros((n, n), dtype=np.int64)
        self._instances: InstanceCounts | None = None
        self._images = 0
        self._images_without_instances = 0
        self._per_image: list[ImageScore] = []

    def update(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        instance_ids: torch.Tensor | None = None,
        *,
        space: Literal["label_id", "train_id"] = "label_id",
        names: Sequence[str] | None = None,
    ) -> None:
        """Add ``H x W`` or ``B x H x W`` predictions and targets (and ``id * 1000 + k`` instance ids)."""
        pred, target = widen(torch.as_tensor(pred)), widen(torch.as_tensor(target))
        if pred.shape != target.shape:
            raise DataError(f"Prediction shape {tuple(pred.shape)} differs from target shape {tuple(target.shape)}.")
        if instance_ids is not None:
            instance_ids = torch.as_tensor(instance_ids)
            if instance_ids.shape != target.shape:
                raise DataError(
                    f"Instance id shape {tuple(instance_ids.shape)} differs from target shape {tuple(target.shape)}."
                )
        if pred.ndim == 2:
            pred, target = pred[None], target[None]
            instance_ids = None if instance_ids is None else instance_ids[None]
        if space == "train_id":
            pred = self.space.from_train_ids(pred, "prediction")
            target = self.space.from_train_ids(target, "target")
        else:
            self.space.check_ids(pred, "prediction")
            self.space.check_ids(target, "target")
        if instance_ids is not None and not self.space.cityscapes:
            raise DataError("Instance ids (for iIoU) exist for Cityscapes' label set only.")
        for b in range(pred.shape[0]):
            name = names[b] if names is not None else f"image {self._images}"
            inst = None if instance_ids is None else instance_ids[b]
            self.add(image_statistics(pred[b], target[b], inst, name=name, n=self.space.size))

    def add(self, stats: ImageStatistics) -> None:
        """Add one image's precomputed counts (e.g. from a worker thread)."""
        self._confusion += stats.confusion
        if stats.instances is None:
            self._images_without_instances += 1
        else:
            if self._instances is None:
                self._instances = InstanceCounts()
            self._instances += stats.instances
        self._images += 1
        if self.per_image:
            self._per_image.append(_image_score(stats, self.space))

    def merge(self, other: SegmentationMetrics) -> None:
        """Add another accumulator's counts (e.g. from another process of a distributed evaluation)."""
        self._confusion += other._confusion
        if other._instances is not None:
            if self._instances is None:
                self._instances = InstanceCounts()
            self._instances += other._instances
        self._images += other._images
        self._images_without_instances += other._images_without_instances
        self._per_image.extend(other._per_image)

    @property
    def num_images(self) -> int:
        return self._images

    @property
    def confusion(self) -> np.ndarray:
        return self._confusion.copy()

    def compute(self) -> SegmentationScores:
        """The scores so far. iIoU is None unless every image came with instance ids."""
        conf, space = self._confusion, self.space
        tp = np.diag(conf)
        rows = conf.sum(1)
        with_instances = self._instances is not None and self._images_without_instances == 0
        inst = self._instances if with_instances else None
        valid = int(rows[space.evaluated].sum())
        return SegmentationScores(
            class_iou=class_iou(conf, space),
            category_iou=category_iou(conf) if space.cityscapes else None,
            class_iiou=class_iiou(conf, inst) if inst is not None else None,
            category_iiou=category_iiou(conf, inst) if inst is not None else None,
            class_accuracy={n: _ratio(tp[i], rows[i]) for n, i in zip(space.class_names, space.class_ids)},
            pixel_accuracy=_ratio(int(tp[space.evaluated].sum()), valid),
            valid_pixels=valid,
            num_images=self._images,
            confusion=conf.copy(),
            per_image=tuple(self._per_image) if self.per_image else None,
            space=space,
        )
