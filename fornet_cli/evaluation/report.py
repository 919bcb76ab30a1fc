"""``fornet eval --report DIR``: a page for one evaluation (viz/eval_page.py) with the worst images' pictures.

::

    DIR/index.html       the page
    DIR/metrics.json     every score (the --json document, per-image scores included)
    DIR/images/          the worst images: photo, prediction and ground truth, small

The pictures come from a :data:`ViewSource`: the model run again on the few worst images, or the prediction
files and images at hand.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.io import read_image
from ..data.labels import ID_TO_TRAIN_ID
from ..data.normalize import normalize
from ..fsutil import atomic_write_text
from ..viz.eval_page import render_eval_page
from ..viz.samples import SampleView, write_panels
from .evaluate import EvaluationResult

ViewSource = Callable[[str], SampleView | None]  # image name -> its pictures (None: not available)
INDEX, METRICS, IMAGES = "index.html", "metrics.json", "images"


def worst_names(result: EvaluationResult, count: int) -> list[tuple[str, float]]:
    """The ``count`` images with the lowest mIoU (undefined last), as (name, mIoU)."""
    scores = result.scores.per_image or ()
    ranked = sorted(scores, key=lambda s: (math.isnan(s.miou), s.miou))
    return [(s.name, s.miou) for s in ranked[:count]]


def write_eval_report(result: EvaluationResult, out: Path, palette: Sequence[Sequence[int]], views: ViewSource | None,
                      title: str, worst: int = 6, extra: dict[str, Any] | None = None) -> Path:
    """Write the report folder ``out``; returns the page's path."""
    doc = {**result.to_dict(), **(extra or {})}
    atomic_write_text(out / METRICS, json.dumps(doc, indent=2, allow_nan=False) + "\n")
    rows = []
    for name, miou in worst_names(result, worst) if views is not None else []:
        view = views(name)
        if view is not None:
            rows.append({"name": name, "miou": None if math.isnan(miou) else miou,
                         "panels": write_panels(view, out / IMAGES, IMAGES, palette)})
    return atomic_write_text(out / INDEX, render_eval_page(doc, palette, rows, title))


def model_views(loaded: Any, dataset: Any, predict: Callable[[torch.Tensor], torch.Tensor]) -> ViewSource:
    """Pictures by running the model again: ``dataset`` without transforms yields ``image`` (3 x H x W uint8),
    ``mask`` (class indices, 255 = ignore) and ``name``; ``predict`` maps a normalised batch to class indices."""
    index = {s.name: i for i, s in enumerate(dataset.samples)}
    meta = loaded.meta

    def view(name: str) -> SampleView | None:
        if name not in index:
            return None
        sample = dataset[index[name]]
        image = sample["image"].permute(1, 2, 0).numpy()
        with torch.no_grad():
            pred = predict(normalize(image, meta.mean, meta.std))[0].cpu().numpy()
        return SampleView(name, image, pred, sample["mask"].numpy())

    return view


def cityscapes_prediction_views(pairs: Sequence[Any], root: Path, split: str | None) -> ViewSource:
    """Pictures from labelId prediction files next to a Cityscapes tree (shown in train-id colours)."""
    from ..data.cityscapes import IMAGE_DIR, IMAGE_SUFFIX
    from ..data.label_png import read_label_png

    by_name = {p.name: p for p in pairs}

    def view(name: str) -> SampleView | None:
        pair = by_name.get(name)
        if pair is None or split is None:
            return None
        image_path = root / IMAGE_DIR / split / name.split("_")[0] / f"{name}{IMAGE_SUFFIX}"
        if not image_path.is_file():
            return None
        pred = ID_TO_TRAIN_ID[read_label_png(pair.prediction, "prediction").numpy().astype(np.uint8)]
        truth = ID_TO_TRAIN_ID[read_label_png(pair.label_ids, "ground truth").numpy().astype(np.uint8)]
        return SampleView(name, read_image(image_path), pred, truth)

    return view


def folder_prediction_views(pairs: Sequence[Any], classes: Any) -> ViewSource:
    """Pictures from class-index prediction files of a folder data set."""
    from ..data.folder import read_mask
    from ..data.label_png import read_label_png

    by_name = {p.sample.name: p for p in pairs}

    def view(name: str) -> SampleView | None:
        pair = by_name.get(name)
        if pair is None or pair.sample.mask is None:
            return None
        pred = read_label_png(pair.prediction, "prediction").numpy()
        return SampleView(name, read_image(pair.sample.image), pred, read_mask(pair.sample.mask, classes))

    return view
