"""The id space scores are counted in: Cityscapes' 34 label ids, or a plain N-class set.

* **Cityscapes** (the 19 training classes, whatever the files are called): predictions and ground truth in
  the official label-id space, so every score equals the official evaluator's, and the Cityscapes-only
  scores (iIoU, categories, thin classes) are defined.
* **Plain N classes** (a folder data set with its own classes): ids 0..N-1 are the classes and id N counts
  the ignored pixels (never scored, as an ignoreInEval label). The same confusion-matrix arithmetic gives
  mIoU, per-class IoU, accuracies and the boundary and trimap scores; iIoU, categories and thin classes are
  Cityscapes' and left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..data.labels import CLASS_NAMES, IGNORE_INDEX, THIN_CLASS_NAMES
from ..errors import DataError
from .counting import EVAL_IDS, EVALUATED_ID, N, check_label_ids, evaluated_mask, to_label_ids

CITYSCAPES_KIND = "cityscapes"
PLAIN_KIND = "classes"


@dataclass(frozen=True, eq=False)
class LabelSpace:
    """Class names, the id of each class in the counted space, which ids are scored, and the thin classes."""

    kind: str  # "cityscapes" or "classes"
    class_names: tuple[str, ...]
    size: int  # ids counted (confusion matrices are size x size)
    class_ids: tuple[int, ...]
    evaluated: np.ndarray = field(repr=False)  # bool per id
    thin_classes: tuple[str, ...] = ()

    @property
    def cityscapes(self) -> bool:
        return self.kind == CITYSCAPES_KIND

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def from_train_ids(self, train_ids: torch.Tensor, what: str = "train-id map") -> torch.Tensor:
        """Class indices (0..N-1, 255 = ignore) -> ids of this space; DataError for any other value."""
        if self.cityscapes:
            return to_label_ids(train_ids, what)
        t = train_ids.long()
        bad = ((t < 0) | (t >= self.num_classes)) & (t != IGNORE_INDEX)
        if bool(bad.any()):
            values = torch.unique(t[bad])[:5].tolist()
            raise DataError(f"The {what} holds values {values} that are not class indices (0..{self.num_classes - 1},"
                            f" or {IGNORE_INDEX} for ignore).")
        return torch.where(t == IGNORE_INDEX, torch.full_like(t, self.num_classes), t)

    def evaluated_mask(self, ids: torch.Tensor) -> torch.Tensor:
        """Boolean map of the pixels the scores count (ids of this space, any device)."""
        if self.cityscapes:
            return evaluated_mask(ids)  # cached lookup tables per device
        # not counting.lookup: it caches tables by id(), and a plain space's table may be short-lived
        return torch.from_numpy(self.evaluated).to(ids.device)[ids.long()]

    def check_ids(self, ids: torch.Tensor, what: str) -> None:
        """DataError when ``ids`` holds values outside this space."""
        if self.cityscapes:
            check_label_ids(ids, what)
        elif ids.numel() and (int(ids.max()) >= self.size or int(ids.min()) < 0):
            bad = torch.unique(ids[(ids >= self.size) | (ids < 0)])[:5].tolist()
            raise DataError(f"The {what} holds values {bad} outside 0..{self.size - 1}.")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "class_names": list(self.class_names)}


CITYSCAPES_SPACE = LabelSpace(CITYSCAPES_KIND, CLASS_NAMES, N, EVAL_IDS, EVALUATED_ID, THIN_CLASS_NAMES)


def plain_space(class_names: tuple[str, ...] | list[str]) -> LabelSpace:
    """N classes counted as ids 0..N-1, with id N for ignored pixels."""
    n = len(class_names)
    evaluated = np.zeros(n + 1, dtype=bool)
    evaluated[:n] = True
    return LabelSpace(PLAIN_KIND, tuple(class_names), n + 1, tuple(range(n)), evaluated)


def space_for(class_names: tuple[str, ...] | list[str]) -> LabelSpace:
    """Cityscapes' space for its 19 training classes (in order), a plain one for any other set."""
    return CITYSCAPES_SPACE if tuple(class_names) == CLASS_NAMES else plain_space(class_names)
