"""The Cityscapes label definitions (the official 34 labels plus the license plate) and lookup tables.

Label ids (``id``, 0..33) are what ``*_gtFine_labelIds.png`` and submissions use; train ids (0..18, 255 =
ignore) are what models predict. Values follow cityscapesscripts' ``helpers/labels.py``; a test checks
every field against it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

IGNORE_INDEX = 255


class Label(NamedTuple):
    name: str
    id: int
    train_id: int
    category: str
    category_id: int
    has_instances: bool
    ignore_in_eval: bool
    color: tuple[int, int, int]


# fmt: off
LABELS: tuple[Label, ...] = (
    #      name                    id  trainId  category       catId  hasInst ignore  color
    Label("unlabeled",             0,  255, "void",          0, False, True,  (0, 0, 0)),
    Label("ego vehicle",           1,  255, "void",          0, False, True,  (0, 0, 0)),
    Label("rectification border",  2,  255, "void",          0, False, True,  (0, 0, 0)),
    Label("out of roi",            3,  255, "void",          0, False, True,  (0, 0, 0)),
    Label("static",                4,  255, "void",          0, False, True,  (0, 0, 0)),
    Label("dynamic",               5,  255, "void",          0, False, True,  (111, 74, 0)),
    Label("ground",                6,  255, "void",          0, False, True,  (81, 0, 81)),
    Label("road",                  7,    0, "flat",          1, False, False, (128, 64, 128)),
    Label("sidewalk",              8,    1, "flat",          1, False, False, (244, 35, 232)),
    Label("parking",               9,  255, "flat",          1, False, True,  (250, 170, 160)),
    Label("rail track",           10,  255, "flat",          1, False, True,  (230, 150, 140)),
    Label("building",             11,    2, "construction",  2, False, False, (70, 70, 70)),
    Label("wall",                 12,    3, "construction",  2, False, False, (102, 102, 156)),
    Label("fence",                13,    4, "construction",  2, False, False, (190, 153, 153)),
    Label("guard rail",           14,  255, "construction",  2, False, True,  (180, 165, 180)),
    Label("bridge",               15,  255, "construction",  2, False, True,  (150, 100, 100)),
    Label("tunnel",               16,  255, "construction",  2, False, True,  (150, 120, 90)),
    Label("pole",                 17,    5, "object",        3, False, False, (153, 153, 153)),
    Label("polegroup",            18,  255, "object",        3, False, True,  (153, 153, 153)),
    Label("traffic light",        19,    6, "object",        3, False, False, (250, 170, 30)),
    Label("traffic sign",         20,    7, "object",        3, False, False, (220, 220, 0)),
    Label("vegetation",           21,    8, "nature",        4, False, False, (107, 142, 35)),
    Label("terrain",              22,    9, "nature",        4, False, False, (152, 251, 152)),
    Label("sky",                  23,   10, "sky",           5, False, False, (70, 130, 180)),
    Label("person",               24,   11, "human",         6, True,  False, (220, 20, 60)),
    Label("rider",                25,   12, "human",         6, True,  False, (255, 0, 0)),
    Label("car",                  26,   13, "vehicle",       7, True,  False, (0, 0, 142)),
    Label("truck",                27,   14, "vehicle",       7, True,  False, (0, 0, 70)),
    Label("bus",                  28,   15, "vehicle",       7, True,  False, (0, 60, 100)),
    Label("caravan",              29,  255, "vehicle",       7, True,  True,  (0, 0, 90)),
    Label("trailer",              30,  255, "vehicle",       7, True,  True,  (0, 0, 110)),
    Label("train",                31,   16, "vehicle",       7, True,  False, (0, 80, 100)),
    Label("motorcycle",           32,   17, "vehicle",       7, True,  False, (0, 0, 230)),
    Label("bicycle",              33,   18, "vehicle",       7, True,  False, (119, 11, 32)),
    Label("license plate",        -1,   -1, "vehicle",       7, False, True,  (0, 0, 142)),
)
# fmt: on

NUM_LABEL_IDS = 34  # valid values of a labelIds PNG: 0..33
NUM_CLASSES = 19  # evaluated classes (train ids 0..18)

ID_TO_LABEL = {label.id: label for label in LABELS}
NAME_TO_LABEL = {label.name: label for label in LABELS}
EVAL_LABELS: tuple[Label, ...] = tuple(sorted((lb for lb in LABELS if 0 <= lb.train_id < 255), key=lambda lb: lb.train_id))
CLASS_NAMES: tuple[str, ...] = tuple(lb.name for lb in EVAL_LABELS)
CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(lb.category for lb in LABELS if lb.id >= 0))

# id -> trainId for every byte value: ids outside 0..33 map to ignore too (callers validate first).
ID_TO_TRAIN_ID = np.full(256, IGNORE_INDEX, dtype=np.uint8)
for _lb in LABELS:
    if 0 <= _lb.id < NUM_LABEL_IDS and not _lb.ignore_in_eval:
        ID_TO_TRAIN_ID[_lb.id] = _lb.train_id

# trainId -> id (255 -> 0 "unlabeled") and trainId -> colour (255 -> black).
TRAIN_ID_TO_ID = np.zeros(256, dtype=np.uint8)
TRAIN_ID_TO_COLOR = np.zeros((256, 3), dtype=np.uint8)
for _lb in EVAL_LABELS:
    TRAIN_ID_TO_ID[_lb.train_id] = _lb.id
    TRAIN_ID_TO_COLOR[_lb.train_id] = _lb.color

# Instance-level (iIoU) classes and the official average instance sizes are in the eval code.
INSTANCE_CLASS_NAMES: tuple[str, ...] = tuple(lb.name for lb in EVAL_LABELS if lb.has_instances)

# Thin classes used by the hard-region metrics.
THIN_CLASS_NAMES: tuple[str, ...] = ("pole", "traffic light", "traffic sign", "person", "rider", "motorcycle", "bicycle")


def id_to_train_id(label_ids: np.ndarray) -> np.ndarray:
    """Map a labelIds array (uint8, 0..33) to train ids (0..18, 255 = ignore)."""
    return ID_TO_TRAIN_ID[label_ids]


def train_id_to_id(train_ids: np.ndarray) -> np.ndarray:
    """Map train ids back to label ids (for the official evaluator and the submission server)."""
    return TRAIN_ID_TO_ID[train_ids]


def colorize(train_ids: np.ndarray) -> np.ndarray:
    """H x W train ids -> H x W x 3 uint8 colours in the official palette."""
    return TRAIN_ID_TO_COLOR[train_ids]
