"""Evaluation: a folder of labelId predictions against Cityscapes ground truth, or a model over a dataset.

Both stream image by image into :class:`SegmentationMetrics` (the official scores) and
:class:`HardRegionMetrics` (hard-region scores); nothing per image is kept unless asked for.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.label_png import read_label_png
from ..data.labels import IGNORE_INDEX, TRAIN_ID_TO_ID
from ..data.prediction_files import EvalPair, find_ground_truth, match_predictions
from ..devices import default_workers, torch_threads
from ..errors import DataError, FornetError, from_loader_worker
from ..inference.engines import class_argmax
from ..inference.predictor import InferenceConfig, Predictor
from ..pipeline import ordered_map
from .counting import ImageStatistics, N, evaluated_mask, image_statistics, widen
from .hard_regions import HardRegionConfig, HardRegionMetrics, HardRegionScores
from .metrics import SegmentationMetrics, SegmentationScores
from .space import CITYSCAPES_SPACE, LabelSpace

Progress = Callable[[int, int], None]  # (images done, images in total; 0 when the total is unknown)



@dataclass(frozen=True)
class EvaluationResult:
    """Scores of one evaluation and what was evaluated. ``to_dict()`` is the ``--json`` document."""

    scores: SegmentationScores
    hard: HardRegionScores | None
    source: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "num_images": self.scores.num_images,
            "seconds": round(self.seconds, 3),
            **self.scores.to_dict(),
            "hard_regions": None if self.hard is None else self.hard.to_dict(),
        }


# --------------------------------------------------------------------------------------------------------
# Counting one prediction file
# --------------------------------------------------------------------------------------------------------

_TRAINID_HINT = (
    "This looks like trainIds (0..18, 255 = ignore), but the evaluator expects labelIds (0..33) as the "
    "official one does. Write predictions with `fornet predict --format labelid`, or map trainIds to labelIds."
)


def check_prediction(pred: torch.Tensor, gt: torch.Tensor, path: Path) -> None:
    """Raise DataError when a prediction cannot be labelIds: values above 33, or trainIds (by their scores)."""
    top = int(pred.max()) if pred.numel() else 0
    if top > 33 or int(pred.min()) < 0:
        values = torch.unique(pred[(pred > 33) | (pred < 0)]).tolist()
        extra = _TRAINID_HINT if values == [IGNORE_INDEX] else "Predictions must be labelIds (0..33)."
        shown = ", ".join(map(str, values[:5])) + (", ..." if len(values) > 5 else "")
        raise DataError(f"The prediction {path} holds values {shown}, which are not Cityscapes labelIds. {extra}")
    if top <= 18:
        # A labelId map without sky, vegetation, cars, ... is rare; a trainId map always fits 0..18. Call it
        # trainIds when reading it as trainIds agrees far better with the ground truth than as labelIds.
        evaluated = evaluated_mask(gt)
        as_label = int(((pred.long() == gt.long()) & evaluated).sum())
        as_train = int(((torch.from_numpy(TRAIN_ID_TO_ID).to(gt.device)[pred.long()] == gt.long()) & evaluated).sum())
        valid = int(evaluated.sum())
        if valid and as_train > 0.5 * valid and as_train > 2 * as_label:
            raise DataError(
                f"The prediction {path} scores {as_train / valid:.0%} pixel accuracy read as trainIds but "
                f"{as_label / valid:.0%} read as labelIds. {_TRAINID_HINT}"
            )


@dataclass
class _Counted:
    stats: ImageStatistics
    histogram: np.ndarray | None
    size: tuple[int, int]


def _count_pair(pair: EvalPair, hard: HardRegionMetrics | None) -> _Counted:
    pred = widen(read_label_png(pair.prediction, "prediction"))
    gt = widen(read_label_png(pair.label_ids, "ground truth"))
    if pred.shape != gt.shape:
        raise DataError(
            f"The prediction {pair.prediction} is {pred.shape[1]}x{pred.shape[0]} (width x height) but its ground "
            f"truth {pair.label_ids} is {gt.shape[1]}x{gt.shape[0]}. Predict at the full image resolution."
        )
    if int(gt.max()) >= N:
        raise DataError(f"The ground truth {pair.label_ids} holds values above 33; it is not a labelIds image.")
    check_prediction(pred, gt, pair.prediction)
    inst = None
    if pair.instance_ids is not None:
        inst = read_label_png(pair.instance_ids, "instanceIds")
        if inst.shape != gt.shape:
            raise DataError(f"{pair.instance_ids} is {tuple(inst.shape)} but {pair.label_ids} is {tuple(gt.shape)}.")
    hist = conf = None
    if hard is not None:
        h = hard.histogram(pred, gt)
        conf = h.sum(dim=(2, 3))
        hist = h.numpy()
    stats = image_statistics(pred, gt, inst, name=pair.name, confusion=conf)
    return _Counted(stats, hist, (int(gt.shape[0]), int(gt.shape[1])))




def evaluate_predictions(
    pred_dir: str | Path,
    gt_root: str | Path,
    split: str | None = None,
    *,
    hard: HardRegionConfig | None = HardRegionConfig(),
    instances: bool | None = None,
    per_image: bool = False,
    workers: int | None = None,
    progress: Progress | None = None,
) -> EvaluationResult:
    """Evaluate a folder of labelId PNGs against Cityscapes ground truth, like the official evaluator.

    Ground truth: ``gt_root/gtFine/<split>`` (see :func:`find_ground_truth`; ``split=None`` takes every
    ``*_gtFine_labelIds.png`` below ``gt_root``). ``hard=None`` skips the hard-region scores; ``instances``
    as in :func:`match_predictions`; ``workers`` threads decode and count images in parallel (torch runs
    one intra-op thread meanwhile, restored afterwards).
    """
    start = time.perf_counter()
    gt_files = find_ground_truth(gt_root, split)
    pairs = match_predictions(pred_dir, gt_files, instances)
    metrics = SegmentationMetrics(per_image=per_image)
    hard_metrics = HardRegionMetrics(hard) if hard is not None else None
    workers = default_workers() if workers is None else max(1, workers)
    with torch_threads(1):
        for i, counted in enumerate(ordered_map(lambda p: _count_pair(p, hard_metrics), pairs, workers if workers > 1 else 0, name="fornet-eval")):
            metrics.add(counted.stats)
            if hard_metrics is not None and counted.histogram is not None:
                hard_metrics.add(counted.histogram, counted.size)
            if progress is not None:
                progress(i + 1, len(pairs))
    source = {
        "kind": "predictions",
        "predictions": str(Path(pred_dir)),
        "ground_truth": str(Path(gt_root)),
        "split": split,
        "instances": pairs[0].instance_ids is not None,
    }
    return EvaluationResult(
        metrics.compute(),
        hard_metrics.compute() if hard_metrics is not None else None,
        source,
        time.perf_counter() - start,
    )


# --------------------------------------------------------------------------------------------------------
# Evaluating a model
# --------------------------------------------------------------------------------------------------------


def _collate_list(batch: list) -> list:
    return batch


def _batches(data: Any, batch_size: int, num_workers: int) -> Iterator[list[dict]]:
    """Lists of samples: through a DataLoader for map-style datasets with ``num_workers`` loader processes;
    without (0), the next samples are read on a thread while the model runs (decoding releases the GIL);
    plain grouping for other iterables."""
    if isinstance(data, torch.utils.data.Dataset) and hasattr(data, "__len__") and num_workers == 0:
        samples = ordered_map(data.__getitem__, range(len(data)), 1, ahead=2 * batch_size, name="fornet-load")
        with closing(samples):
            yield from _grouped(samples, batch_size)
        return
    if isinstance(data, torch.utils.data.Dataset) and hasattr(data, "__len__"):
        loader = torch.utils.data.DataLoader(
            data, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=_collate_list
        )
        try:
            yield from loader
        except FornetError as exc:  # a bad file read in a loader worker: its message, not its traceback
            raise from_loader_worker(exc) from None
        return
    yield from _grouped(data, batch_size)


def _grouped(samples: Iterable[dict], batch_size: int) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for sample in samples:
        batch.append(sample)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def _same_size_groups(batch: list[dict]) -> Iterator[list[dict]]:
    """Consecutive samples of one image size (images of different sizes cannot be stacked)."""
    group: list[dict] = []
    for sample in batch:
        if group and sample["image"].shape[-2:] != group[0]["image"].shape[-2:]:
            yield group
            group = []
        group.append(sample)
    if group:
        yield group


def evaluate_model(
    model: nn.Module,
    data: Iterable[dict],
    inference: InferenceConfig | None = None,
    *,
    hard: HardRegionConfig | None = HardRegionConfig(),
    per_image: bool = False,
    selector: bool = True,
    num_workers: int = 0,
    limit: int | None = None,
    progress: Progress | None = None,
    gather: Callable[[Any], list[Any]] | None = None,
    space: LabelSpace = CITYSCAPES_SPACE,
    predictor: Predictor | None = None,
) -> EvaluationResult:
    """Run ``model`` over ``data`` and score it, streaming (nothing but counts is kept).

    ``gather`` makes a distributed evaluation: each process scores its own shard of the data, and
    ``gather(obj)`` must return every process's ``obj`` (e.g. ``torch.distributed.all_gather_object``);
    the counts are merged so every process gets the scores of the whole set.

    ``data`` yields dicts with ``image`` (normalised float 3 x H x W), ``mask`` (train ids, 255 = ignore,
    H x W), optionally ``instance_ids`` (``id * 1000 + k``, H x W) and ``name``. A map-style dataset is
    loaded with a DataLoader (``num_workers``). For FoR-Net models in whole mode without TTA or focus inference
    the selector's error recall is measured too (``selector=False`` skips it). ``space``: the label set the masks are in
    (Cityscapes' train ids by default; a folder data set's classes: evaluation/space.py). ``predictor``: run
    the model through this one (e.g. with a runtime and its notifications) instead of a new one.
    """
    inference = predictor.config if predictor is not None else inference or InferenceConfig()
    predictor = predictor or Predictor(model, inference)
    device = predictor.device
    metrics = SegmentationMetrics(per_image=per_image, space=space)
    hard_metrics = HardRegionMetrics(hard, space) if hard is not None else None
    # Focus inference computes no full-resolution Top-K masks, so the selector's error recall is not measured.
    use_fornet = (selector and hasattr(model, "forward_all") and inference.mode == "whole" and inference.num_views == 1
                  and inference.focus is None)
    total = len(data) if hasattr(data, "__len__") else 0  # type: ignore[arg-type]
    if limit is not None:
        total = min(total, limit) if total else limit
    start = time.perf_counter()
    done = 0
    batches = _batches(data, inference.batch_size, num_workers)
    with closing(batches):  # stops the loading thread at the limit or on an error
        for batch in batches:
            if limit is not None and done >= limit:
                break
            batch = batch[: limit - done] if limit is not None else batch
            for group in _same_size_groups(batch):
                _evaluate_group(group, predictor, use_fornet, metrics, hard_metrics, device, done, space)
                done += len(group)
            if progress is not None:
                progress(done, total)
    if gather is not None:  # a fresh accumulator with every process's counts (its own included)
        shards = gather((metrics, hard_metrics))
        metrics = SegmentationMetrics(per_image=per_image, space=space)
        hard_metrics = HardRegionMetrics(hard, space) if hard is not None else None
        for shard_metrics, shard_hard in shards:
            metrics.merge(shard_metrics)
            if hard_metrics is not None and shard_hard is not None:
                hard_metrics.merge(shard_hard)
        done = metrics.num_images
    if done == 0:
        raise DataError("The dataset yielded no images to evaluate.")
    source = {
        "kind": "model",
        "model": getattr(model, "name", "") or type(model).__name__,
        "inference": inference.to_dict(),
        # what chose the cells (the model's own cue unless --selector-cue set one); None: not a FoR-Net model
        "selector_cue": getattr(model, "selector_cue", None),
        "device": str(device),
        "runtime": predictor.runtime_info.to_dict(),
        "label_set": space.kind,
    }
    return EvaluationResult(
        metrics.compute(),
        hard_metrics.compute() if hard_metrics is not None else None,
        source,
        time.perf_counter() - start,
    )


def _evaluate_group(
    group: list[dict],
    predictor: Predictor,
    use_fornet: bool,
    metrics: SegmentationMetrics,
    hard_metrics: HardRegionMetrics | None,
    device: torch.device,
    offset: int,
    space: LabelSpace = CITYSCAPES_SPACE,
) -> None:
    for key in ("image", "mask"):
        if any(key not in s for s in group):
            raise DataError(f"Dataset samples must be dicts with 'image' and 'mask'; one has keys {sorted(group[0])}.")
    images = torch.stack([torch.as_tensor(s["image"]) for s in group]).to(device, non_blocking=True)
    if use_fornet:
        out = predictor.fornet_outputs(images)
        pred_train, masks = class_argmax(out.logits), out.masks
    else:
        pred_train, masks = predictor.predict(images), None
    for j, sample in enumerate(group):
        name = str(sample.get("name") or sample.get("path") or f"image {offset + j}")
        label = torch.as_tensor(sample["mask"]).to(device)
        if label.shape != pred_train.shape[-2:]:
            raise DataError(
                f"The label of {name} is {tuple(label.shape)} but its image is {tuple(pred_train.shape[-2:])}."
            )
        gt_ids = space.from_train_ids(label, f"label of {name}")
        pred_ids = space.from_train_ids(pred_train[j], "prediction")
        inst = sample.get("instance_ids") if space.cityscapes else None  # iIoU is Cityscapes'
        inst = None if inst is None else torch.as_tensor(inst).to(device)
        if inst is not None and inst.shape != label.shape:
            raise DataError(
                f"The instance ids of {name} are {tuple(inst.shape)} but its label is {tuple(label.shape)}."
            )
        conf = hard_metrics.update(pred_ids, gt_ids) if hard_metrics is not None else None
        metrics.add(image_statistics(pred_ids, gt_ids, inst, name=name, confusion=conf, n=space.size))
        if hard_metrics is not None and masks is not None:
            hard_metrics.update_selector(pred_ids, gt_ids, masks[j : j + 1], predictor.model.topk_ratios)
