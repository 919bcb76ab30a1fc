"""Finding ground truth and predictions in Cityscapes layout, matched the way the official evaluator does."""

from __future__ import annotations

import bisect
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError

GT_SUFFIX = "_gtFine_labelIds.png"


@dataclass(frozen=True)
class EvalPair:
    """One ground-truth image and its prediction."""

    name: str  # <city>_<seq>_<frame>
    prediction: Path
    label_ids: Path
    instance_ids: Path | None


def find_ground_truth(gt_root: str | Path, split: str | None = None) -> list[Path]:
    """``*_gtFine_labelIds.png`` files: below ``gt_root/gtFine/<split>`` (or ``gt_root/<split>`` when
    ``gt_root`` is the gtFine folder), or anywhere below ``gt_root`` when ``split`` is None."""
    root = Path(gt_root)
    if not root.is_dir():
        raise DataError(
            f"The ground-truth folder {root} does not exist. Point --root at a Cityscapes folder (it holds gtFine/)."
        )
    base = root
    if split is not None:
        candidates = [root / "gtFine" / split, root / split] if root.name != "gtFine" else [root / split]
        base = next((c for c in candidates if c.is_dir()), None)
        if base is None:
            gtfine = root / "gtFine" if (root / "gtFine").is_dir() else root
            found = sorted(p.name for p in gtfine.iterdir() if p.is_dir()) if gtfine.is_dir() else []
            hint = f" It has: {', '.join(found)}." if found else " Point --root at the folder that holds gtFine/."
            raise DataError(f"No split {split!r} under {gtfine}.{hint}")
    files = sorted(base.rglob("*" + GT_SUFFIX))
    if not files:
        raise DataError(
            f"No ground truth (*{GT_SUFFIX}) under {base}. Cityscapes keeps it in gtFine/<split>/<city>/ "
            "(from gtFine_trainvaltest.zip); point --root at the folder that holds gtFine/."
        )
    return files


def image_key(path: str | Path) -> str:
    """``<city>_<seq>_<frame>``: the first three ``_`` fields of a Cityscapes file name."""
    parts = Path(path).name.split("_")
    if len(parts) < 4:
        raise DataError(f"{path} is not named like a Cityscapes file (<city>_<seq>_<frame>_<type>.png).")
    return "_".join(parts[:3])


class PredictionIndex:
    """The PNG files below a folder, matched like the official ``getPrediction``: the one file named
    ``<city>_<seq>_<frame>*.png`` anywhere below the folder."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise DataError(f"The predictions folder {self.folder} does not exist.")
        entries = []
        for dirpath, _, filenames in os.walk(self.folder):
            entries.extend((f, os.path.join(dirpath, f)) for f in filenames if f.endswith(".png"))
        entries.sort()
        self._names = [e[0] for e in entries]
        self._paths = [e[1] for e in entries]

    def __len__(self) -> int:
        return len(self._names)

    def matches(self, key: str) -> list[Path]:
        """Every PNG whose name starts with ``key`` (sorted names make it a range)."""
        i = bisect.bisect_left(self._names, key)
        out = []
        while i < len(self._names) and self._names[i].startswith(key):
            out.append(Path(self._paths[i]))
            i += 1
        return out


def match_predictions(pred_dir: str | Path, gt_files: Sequence[Path], instances: bool | None = None) -> list[EvalPair]:
    """Pair every ground-truth file with its prediction; DataError naming what is missing or ambiguous.

    ``instances``: None uses instanceIds when every image has them, True requires them, False ignores them.
    """
    index = PredictionIndex(pred_dir)
    pairs, missing, ambiguous = [], [], []
    for gt in gt_files:
        key = image_key(gt)
        found = index.matches(key)
        if not found:
            missing.append(key)
            continue
        if len(found) > 1:
            ambiguous.append((key, found))
            continue
        inst = gt.with_name(gt.name.replace("labelIds", "instanceIds"))
        pairs.append(EvalPair(key, found[0], gt, inst))
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        hint = "" if len(index) else " The folder holds no PNG files at all."
        raise DataError(
            f"No prediction for {len(missing)} of {len(gt_files)} ground-truth images ({shown}).{hint} Predictions "
            f"are matched like the official evaluator does: one PNG named <city>_<seq>_<frame>*.png anywhere "
            f"below {index.folder}. Predict every image of the split (or evaluate a split that matches)."
        )
    if ambiguous:
        key, found = ambiguous[0]
        raise DataError(
            f"{len(ambiguous)} ground-truth images have several predictions, e.g. {key}: "
            f"{', '.join(str(p) for p in found[:3])}. Keep one labelIds PNG per image below the predictions "
            "folder (move colour or trainId images elsewhere)."
        )
    have = [p.instance_ids is not None and p.instance_ids.is_file() for p in pairs]
    if instances is None:
        instances = all(have)
        if not instances and any(have):
            instances = True  # some exist: the others are missing, which is an error below
    if instances and not all(have):
        lacking = [str(p.instance_ids) for p, h in zip(pairs, have) if not h]
        raise DataError(
            f"{len(lacking)} ground-truth images have no instanceIds file (e.g. {lacking[0]}), needed for iIoU. "
            "Restore the gtFine *_instanceIds.png files next to the labelIds."
        )
    if not instances:
        pairs = [EvalPair(p.name, p.prediction, p.label_ids, None) for p in pairs]
    return pairs
