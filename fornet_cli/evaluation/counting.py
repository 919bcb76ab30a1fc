"""Counting one image in the official Cityscapes label-id space: lookup tables, the 34 x 34 confusion matrix
and the per-instance sums behind iIoU. :mod:`fornet_cli.evaluation.metrics` turns the counts into scores.

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

from dataclasses import dataclass, field

import numpy as np
import torch

from ..data.labels import (
    CATEGORIES,
    CLASS_NAMES,
    EVAL_LABELS,
    IGNORE_INDEX,
    LABELS,
    NUM_LABEL_IDS,
    TRAIN_ID_TO_ID,
)
from ..errors import DataError

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


def confusion_matrix(pred_ids: torch.Tensor, gt_ids: torch.Tensor, n: int = N) -> torch.Tensor:
    """``n x n`` int64 counts of (ground-truth id, predicted id) over all pixels; inputs hold ids 0..n-1
    (34 Cityscapes label ids by default; a plain class set's ids otherwise, evaluation/space.py)."""
    # int16 codes (max 33 * 34 + 33) halve the memory traffic of int32; bincount accepts them.
    dtype = torch.int16 if n * n <= torch.iinfo(torch.int16).max else torch.int32
    code = gt_ids.to(dtype, copy=True).mul_(n).add_(pred_ids.to(dtype))
    return fast_bincount(code if code.ndim == 2 else code.reshape(1, -1), n * n).view(n, n)


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
    n: int = N,
) -> ImageStatistics:
    """Counts of one image in label-id space (``n`` ids). ``confusion`` may be passed when already computed."""
    conf = confusion_matrix(pred_ids, gt_ids, n) if confusion is None else confusion
    inst = None
    if instance_ids is not None:
        inst = instance_counts(pred_ids, instance_ids, f"instanceIds of {name or 'the image'}")
    return ImageStatistics(conf.cpu().numpy().astype(np.int64), inst, name)


def widen(ids: torch.Tensor) -> torch.Tensor:
    """uint16 maps (16-bit PNGs) as int32: few torch ops take uint16."""
    return ids.to(torch.int32) if ids.dtype == torch.uint16 else ids
