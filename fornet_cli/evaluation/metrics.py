"""Cityscapes pixel-level scores, computed exactly as the official evaluator computes them, but vectorised.

The official ``cityscapesscripts/evaluation/evalPixelLevelSemanticLabeling.py`` works in the 34-labelId
space, and so does this module, because that is what makes every number identical:

* The confusion matrix counts every pixel (rows = ground-truth id, columns = predicted id, 34 x 34).
  Scores only read the rows of labels that are not ``ignoreInEval``; a prediction of an ignored or void
  id (e.g. 0, or caravan 29) on such a row is simply wrong (a false negative of the ground-truth class).
* IoU of class c: ``TP / (TP + FP + FN)`` with TP = C[c, c], FN = row sum - TP and FP = the column of c over
  the non-ignored rows other than c. NaN when the denominator is 0 (class absent from ground truth and
  never predicted on evaluated pixels); averages skip NaN.
* Category IoU: the same on the sum of the category's non-ignored labels (FP rows: evaluated labels of
  other categories).
* iIoU of an instance class: TP and FN of each ground-truth instance (instanceIds value ``id * 1000 + k``,
  values > 1000 only) weighted by ``avgClassSize[class] / instance size``; FP unweighted as for IoU.
  Categories whose labels all have instances (human, vehicle) get an iIoU too; there the instance counts
  as found where the prediction is any label of the category, caravan and trailer included.

Model predictions in train-id space are mapped to label ids first (``train_id_to_id``), which keeps every
score identical. Counting runs in torch on the tensors' device; the small per-instance and per-class sums
finish in numpy (float64).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from ..data.labels import (
    CATEGORIES,
    CLASS_NAMES,
    EVAL_LABELS,
    IGNORE_INDEX,
    INSTANCE_CLASS_NAMES,
    LABELS,
    NUM_LABEL_IDS,
    TRAIN_ID_TO_ID,
)
from ..errors import DataError
from ..fmt import nan_to_none, none_if_nan

N = NUM_LABEL_IDS  # 34 label ids, 0..33

# The official average instance sizes (pixels at 1024 x 2048), copied from evalPixelLevelSemanticLabeling.py.
AVG_CLASS_SIZE: dict[str, float] = {
    "bicycle": 4672.3249222261,
    "caravan": 36771.8241758242,
    "motorcycle": 6298.7200839748,
    "rider": 3930.4788056518,
    "bus": 35732.1511111111,
    "train": 67583.7075812274,
    "car": 12794.0202738185,
    "person": 3462.4756337644,
    "truck": 27855.1264367816,
    "trailer": 16926.9763313609,
}

_ID_LABELS = [lb for lb in LABELS if lb.id >= 0]
EVAL_IDS: tuple[int, ...] = tuple(lb.id for lb in EVAL_LABELS)  # label id of each train id 0..18
IGNORED_ID = np.array([next(lb for lb in _ID_LABELS if lb.id == i).ignore_in_eval for i in range(N)])
EVALUATED_ID = ~IGNORED_ID
INSTANCE_CLASS_IDS: tuple[int, ...] = tuple(lb.id for lb in EVAL_LABELS if lb.has_instances)
# Categories with at least one evaluated label: the ones that get a score.
SCORED_CATEGORIES: tuple[str, ...] = tuple(c for c in CATEGORIES if any(lb.category == c for lb in EVAL_LABELS))
# Categories whose labels (id >= 0) all have instances get an iIoU; their ids include ignored labels.
INSTANCE_CATEGORIES: dict[str, tuple[int, ...]] = {
    c: tuple(lb.id for lb in _ID_LABELS if lb.category == c)
    for c in CATEGORIES
    if all(lb.has_instances for lb in _ID_LABELS if lb.category == c)
}

# Per label id: the official average size (NaN: no iIoU), and the instance-category index (-1: none).
_AVG_SIZE = np.full(N, np.nan)
_INST_CAT_OF_ID = np.full(N, -1, dtype=np.int64)
for _lb in _ID_LABELS:
    if _lb.has_instances and not _lb.ignore_in_eval:
        _AVG_SIZE[_lb.id] = AVG_CLASS_SIZE[_lb.name]
for _k, _ids in enumerate(INSTANCE_CATEGORIES.values()):
    _INST_CAT_OF_ID[list(_ids)] = _k
# Each instance category's label ids form a range (human 24-25, vehicle 26-33): range tests are cheaper
# than table look-ups on the ~500k instance pixels of an image.
_INST_CAT_RANGES = tuple((min(ids), max(ids)) for ids in INSTANCE_CATEGORIES.values())
assert all(hi - lo + 1 == len(ids) for (lo, hi), ids in zip(_INST_CAT_RANGES, INSTANCE_CATEGORIES.values()))


def _category_hit(label: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Whether each predicted id lies in the instance category of the ground-truth label (uint8 inputs)."""
    hit = np.zeros(label.shape, dtype=bool)
    for lo, hi in _INST_CAT_RANGES:
        # (x - lo) wraps around in uint8, so one comparison tests lo <= x <= hi
        hit |= ((label - np.uint8(lo)) <= hi - lo) & ((pred - np.uint8(lo)) <= hi - lo)
    return hit


_TABLE_CACHE: dict[tuple[str, torch.device], torch.Tensor] = {}


def _table(name: str, device: torch.device) -> torch.Tensor:
    """Lookup tables as tensors on ``device``, built once per device."""
    key = (name, device)
    if key not in _TABLE_CACHE:
        arrays = {
            "train_to_id": TRAIN_ID_TO_ID.astype(np.int64),
            "train_valid": np.isin(np.arange(256), [*range(len(CLASS_NAMES)), IGNORE_INDEX]),
        }
        _TABLE_CACHE[key] = torch.from_numpy(arrays[name]).to(device)
    return _TABLE_CACHE[key]


def lookup(table: np.ndarray, ids: torch.Tensor) -> torch.Tensor:
    """``table[ids]`` for integer ids, on the ids' device (numpy's take on CPU: 4x faster than indexing)."""
    if ids.device.type == "cpu":
        return torch.from_numpy(np.take(table, ids.numpy()))
    key = (f"lut{id(table)}", ids.device)
    if key not in _TABLE_CACHE:
        _TABLE_CACHE[key] = torch.from_numpy(table).to(ids.device)
    return _TABLE_CACHE[key][ids.long()]


def evaluated_mask(gt_ids: torch.Tensor) -> torch.Tensor:
    """Boolean map of the pixels the official scores count: ground-truth label not ignoreInEval."""
    return lookup(EVALUATED_ID, gt_ids)


# --------------------------------------------------------------------------------------------------------
# Per-image counting
# --------------------------------------------------------------------------------------------------------


@dataclass
class InstanceCounts:
    """Instance-level sums for iIoU, indexed by label id (classes) and instance category."""

    tp_weighted: np.ndarray = field(default_factory=lambda: np.zeros(N))
    fn_weighted: np.ndarray = field(default_factory=lambda: np.zeros(N))
    cat_tp_weighted: np.ndarray = field(default_factory=lambda: np.zeros(len(INSTANCE_CATEGORIES)))
    cat_fn_weighted: np.ndarray = field(default_factory=lambda: np.zeros(len(INSTANCE_CATEGORIES)))
    instances: np.ndarray = field(default_factory=lambda: np.zeros(N, dtype=np.int64))  # counted per class

    def __iadd__(self, other: InstanceCounts) -> InstanceCounts:
        self.tp_weighted += other.tp_weighted
        self.fn_weighted += other.fn_weighted
        self.cat_tp_weighted += other.cat_tp_weighted
        self.cat_fn_weighted += other.cat_fn_weighted
        self.instances += other.instances
        return self


@dataclass
class ImageStatistics:
    """What one image adds to the scores: its 34 x 34 confusion matrix and its instance sums."""

    confusion: np.ndarray  # int64, N x N, rows = ground truth id, columns = predicted id
    instances: InstanceCounts | None
    name: str = ""


def to_label_ids(train_ids: torch.Tensor, what: str = "train-id map") -> torch.Tensor:
    """Map train ids (0..18, 255 = ignore) to label ids (255 -> 0 "unlabeled", an ignored label)."""
    t = train_ids.long()
    bad = (t < 0) | (t > 255) | ~_table("train_valid", t.device)[t.clamp(0, 255)]
    if bool(bad.any()):
        values = torch.unique(t[bad])[:5].tolist()
        raise DataError(f"The {what} holds values {values} that are not train ids (0..18, or 255 for ignore).")
    return _table("train_to_id", t.device)[t]


def check_label_ids(ids: torch.Tensor, what: str) -> None:
    """Raise DataError when ``ids`` holds values outside the 34 Cityscapes label ids."""
    if ids.numel() and (int(ids.max()) >= N or int(ids.min()) < 0):
        bad = torch.unique(ids[(ids >= N) | (ids < 0)])[:5].tolist()
        raise DataError(f"The {what} holds values {bad}, which are not Cityscapes label ids (0..33).")


_LANE_OFFSETS: dict[tuple[int, int, int, torch.dtype, torch.device], torch.Tensor] = {}


def fast_bincount(codes: torch.Tensor, bins: int) -> torch.Tensor:
    """``torch.bincount(codes.flatten(), minlength=bins)`` for an ``H x W`` map of codes, 2x faster on CPU.

    Label maps are piecewise constant, so long runs of pixels hit the same counter and the increments wait
    for each other. Spreading neighbouring columns over ``lanes`` sub-histograms breaks that chain.
    """
    if codes.device.type != "cpu" or codes.ndim != 2:
        return torch.bincount(codes.reshape(-1), minlength=bins)
    limit = torch.iinfo(codes.dtype).max
    lanes = next((k for k in (8, 4, 2) if bins * k - 1 <= limit), 1)
    if lanes == 1:
        return torch.bincount(codes.reshape(-1), minlength=bins)
    key = (codes.shape[1], lanes, bins, codes.dtype, codes.device)
    offsets = _LANE_OFFSETS.get(key)
    if offsets is None:
        offsets = (torch.arange(codes.shape[1]) % lanes * bins).to(codes.dtype)
        if len(_LANE_OFFSETS) > 32:  # a few image sizes in practice; stay bounded anyway
            _LANE_OFFSETS.clear()
        _LANE_OFFSETS[key] = offsets
    spread = codes + offsets
    return torch.bincount(spread.reshape(-1), minlength=bins * lanes).view(lanes, bins).sum(0)


def confusion_matrix(pred_ids: torch.Tensor, gt_ids: torch.Tensor) -> torch.Tensor:
    """34 x 34 int64 counts of (ground-truth id, predicted id) over all pixels; inputs hold ids 0..33."""
    # int16 codes (max 33 * 34 + 33) halve the memory traffic of int32; bincount accepts them.
    code = gt_ids.to(torch.int16, copy=True).mul_(N).add_(pred_ids.to(torch.int16))
    return fast_bincount(code if code.ndim == 2 else code.reshape(1, -1), N * N).view(N, N)


def instance_counts(
    pred_ids: torch.Tensor, instance_ids: torch.Tensor, what: str = "instanceIds image"
) -> InstanceCounts:
    """The official per-instance iIoU sums for one image (``instance_ids``: ``id * 1000 + k``, any int dtype)."""
    # The official evaluator considers values > 1000 only. They are 10-30 % of a Cityscapes image: select
    # them on the device, then count them in numpy in small dtypes (uint16 as decoded from the PNG).
    if instance_ids.device.type == "cpu":
        flat = instance_ids.reshape(-1).numpy()
        selected = flat > 1000
        inst = flat[selected]
        pred = pred_ids.reshape(-1).numpy()[selected]
    else:
        ids = instance_ids.reshape(-1)
        ids = ids.to(torch.int32) if ids.dtype == torch.uint16 else ids  # few CUDA ops take uint16
        selected = ids > 1000
        inst = ids[selected].cpu().numpy()
        pred = pred_ids.reshape(-1)[selected].cpu().numpy()
    counts = InstanceCounts()
    if inst.size == 0:
        return counts
    pred = pred.astype(np.uint8, copy=False)  # label ids 0..33; uint8 keeps the range tests below exact
    top = int(inst.max())
    if top >= N * 1000:
        raise DataError(
            f"The {what} holds instance id {top}, whose label id {top // 1000} is not a Cityscapes label id "
            "(0..33). instanceIds must be labelId * 1000 + instance number."
        )
    label = (inst // 1000).astype(np.uint8)  # divide before widening: uint16 division is 10x faster
    # One bincount gives each instance's size, class TP and category TP: bin = id * 4 + 2 * correct + hit.
    code = inst.astype(np.int32) * 4
    code += (pred == label).view(np.uint8) * np.uint8(2)
    code += _category_hit(label, pred).view(np.uint8)
    bins = torch.bincount(torch.from_numpy(code), minlength=(top + 1) * 4).numpy()
    ids = np.unique(np.flatnonzero(bins) >> 2)  # instance ids present (a bin of 4 per id)
    bins = bins.reshape(-1, 4)
    per = bins[ids]
    size = per.sum(1).astype(np.float64)
    tp = (per[:, 2] + per[:, 3]).astype(np.float64)
    cat_tp = (per[:, 1] + per[:, 3]).astype(np.float64)
    lab = ids // 1000
    keep = ~IGNORED_ID[lab]  # instances of ignored classes (caravan, trailer) are skipped, as officially
    no_instances = keep & np.isnan(_AVG_SIZE[lab])
    if no_instances.any():
        bad = int(ids[no_instances][0])
        name = next(lb.name for lb in _ID_LABELS if lb.id == bad // 1000)
        raise DataError(
            f"The {what} holds instance id {bad}, but class {name!r} has no instances in Cityscapes. "
            "Only person, rider, car, truck, bus, caravan, trailer, train, motorcycle and bicycle do."
        )
    size, tp, cat_tp, lab = size[keep], tp[keep], cat_tp[keep], lab[keep]
    weight = _AVG_SIZE[lab] / size
    np.add.at(counts.tp_weighted, lab, tp * weight)
    np.add.at(counts.fn_weighted, lab, (size - tp) * weight)
    np.add.at(counts.instances, lab, 1)
    cat = _INST_CAT_OF_ID[lab]
    in_cat = cat >= 0
    np.add.at(counts.cat_tp_weighted, cat[in_cat], (cat_tp * weight)[in_cat])
    np.add.at(counts.cat_fn_weighted, cat[in_cat], ((size - cat_tp) * weight)[in_cat])
    return counts


def image_statistics(
    pred_ids: torch.Tensor,
    gt_ids: torch.Tensor,
    instance_ids: torch.Tensor | None = None,
    *,
    name: str = "",
    confusion: torch.Tensor | None = None,
) -> ImageStatistics:
    """Counts of one image in label-id space. ``confusion`` may be passed when already computed."""
    conf = confusion_matrix(pred_ids, gt_ids) if confusion is None else confusion
    inst = None
    if instance_ids is not None:
        inst = instance_counts(pred_ids, instance_ids, f"instanceIds of {name or 'the image'}")
    return ImageStatistics(conf.cpu().numpy().astype(np.int64), inst, name)


# --------------------------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------------------------


def _ratio(num: float, den: float) -> float:
    return float(num) / den if den else float("nan")


def nanmean(values: Sequence[float]) -> float:
    """Mean of the defined (non-NaN) values; NaN when none is defined (the official ``getScoreAverage``)."""
    good = [v for v in values if not math.isnan(v)]
    return sum(good) / len(good) if good else float("nan")


def class_iou(conf: np.ndarray) -> dict[str, float]:
    """Official per-class IoU (19 evaluated classes) from a 34 x 34 label-id confusion matrix."""
    conf = np.asarray(conf, dtype=np.int64)
    tp = np.diag(conf)
    fn = conf.sum(1) - tp
    fp = conf[EVALUATED_ID].sum(0) - tp  # evaluated rows other than the class itself
    return {name: _ratio(tp[i], tp[i] + fp[i] + fn[i]) for name, i in zip(CLASS_NAMES, EVAL_IDS)}


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
    """Every pixel-level score. ``miou`` etc. average the defined (non-NaN) entries, as officially."""

    class_iou: dict[str, float]
    category_iou: dict[str, float]
    class_iiou: dict[str, float] | None  # None when no instanceIds were given
    category_iiou: dict[str, float] | None
    class_accuracy: dict[str, float]
    pixel_accuracy: float
    valid_pixels: int
    num_images: int
    confusion: np.ndarray  # 34 x 34 label-id confusion matrix (rows ground truth)
    per_image: tuple[ImageScore, ...] | None = None

    @property
    def miou(self) -> float:
        return nanmean(list(self.class_iou.values()))

    @property
    def category_miou(self) -> float:
        return nanmean(list(self.category_iou.values()))

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
        """19 x 20 confusion in train-id order; the last column counts predictions of non-evaluated ids."""
        rows = self.confusion[list(EVAL_IDS)]
        evaluated = rows[:, list(EVAL_IDS)]
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
            "category_iou": nan_to_none(self.category_iou),
            "category_iiou": None if self.category_iiou is None else nan_to_none(self.category_iiou),
            "class_accuracy": nan_to_none(self.class_accuracy),
            "valid_pixels": self.valid_pixels,
            "num_images": self.num_images,
        }
        if confusion:
            out["confusion_train_ids"] = {
                "rows": list(CLASS_NAMES),
                "columns": [*CLASS_NAMES, "other"],
                "counts": self.train_id_confusion().tolist(),
            }
        if self.per_image is not None:
            out["per_image"] = [s.to_dict() for s in self.per_image]
        return out


def _image_score(stats: ImageStatistics) -> ImageScore:
    conf = stats.confusion
    valid = int(conf[EVALUATED_ID].sum())
    correct = int(np.diag(conf)[EVALUATED_ID].sum())
    iou = class_iou(conf)
    return ImageScore(stats.name, valid, _ratio(correct, valid), nanmean(list(iou.values())), iou)


def _widen(ids: torch.Tensor) -> torch.Tensor:
    """uint16 maps (16-bit PNGs) as int32: few torch ops take uint16."""
    return ids.to(torch.int32) if ids.dtype == torch.uint16 else ids


class SegmentationMetrics:
    """Streaming accumulator of the official Cityscapes scores.

    >>> metrics = SegmentationMetrics()
    >>> metrics.update(pred, target, instance_ids)        # per batch, any device
    >>> scores = metrics.compute()

    ``space="train_id"`` takes predictions and targets in train ids (255 = ignore); the default takes
    label ids (0..33) like the official evaluator. ``per_image=True`` keeps each image's scores.
    """

    def __init__(self, per_image: bool = False) -> None:
        self.per_image = per_image
        self.reset()

    def reset(self) -> None:
        self._confusion = np.zeros((N, N), dtype=np.int64)
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
        pred, target = _widen(torch.as_tensor(pred)), _widen(torch.as_tensor(target))
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
            pred, target = to_label_ids(pred, "prediction"), to_label_ids(target, "target")
        else:
            check_label_ids(pred, "prediction")
            check_label_ids(target, "target")
        for b in range(pred.shape[0]):
            name = names[b] if names is not None else f"image {self._images}"
            self.add(image_statistics(pred[b], target[b], None if instance_ids is None else instance_ids[b], name=name))

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
            self._per_image.append(_image_score(stats))

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
        conf = self._confusion
        tp = np.diag(conf)
        rows = conf.sum(1)
        with_instances = self._instances is not None and self._images_without_instances == 0
        inst = self._instances if with_instances else None
        valid = int(rows[EVALUATED_ID].sum())
        return SegmentationScores(
            class_iou=class_iou(conf),
            category_iou=category_iou(conf),
            class_iiou=class_iiou(conf, inst) if inst is not None else None,
            category_iiou=category_iiou(conf, inst) if inst is not None else None,
            class_accuracy={n: _ratio(tp[i], rows[i]) for n, i in zip(CLASS_NAMES, EVAL_IDS)},
            pixel_accuracy=_ratio(int(tp[EVALUATED_ID].sum()), valid),
            valid_pixels=valid,
            num_images=self._images,
            confusion=conf.copy(),
            per_image=tuple(self._per_image) if self.per_image else None,
        )
