"""``fornet show-hardness``: for each image a figure of where a FoR-Net model focuses and where it errs, an
``index.html`` gallery and a ``summary.json`` of the selector against the boundary-band baseline.

Output folder::

    DIR/<input path>.png         one figure per image, mirroring the input tree (replaced on each run)
    DIR/thumbs/<input path>.jpg  the gallery's thumbnails
    DIR/index.html               the gallery (no server, no internet: inline CSS/JS, relative links)
    DIR/summary.json             per-image and set-level numbers
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.classes import ClassSet, check_model_classes
from ..data.folder import FolderMaskIndex, read_mask
from ..data.ground_truth import GroundTruthIndex, read_ground_truth
from ..data.io import find_images, output_names, read_image
from ..data.labels import TRAIN_ID_TO_ID
from ..data.normalize import normalize
from ..devices import torch_threads
from ..errors import ConfigError, DataError
from ..fsutil import atomic_path, atomic_write_text, check_output_folder
from ..inference.predictor import InferenceConfig, Predictor
from ..inference.runtime import check_runtime
from ..pipeline import ordered_map
from ..viz import GroundTruthView, HardnessFigureData, class_palette, render_hardness_figure, thumbnail
from ..viz.hardness import FocusView
from ..viz.raster import compact
from ..weights.format import ModelMeta
from ..weights.resolve import LoadedModel
from .analysis import DEFAULT_BAND_WIDTH, ImageHardness, ImageMaps, analyze_image
from .regions import logit_gap
from .selector_model import chosen_by, require_selector
from .summary import HardnessSummary, summarize

THUMBS = "thumbs"
INDEX = "index.html"
SUMMARY = "summary.json"


# --------------------------------------------------------------------------------------------------------
# Configuration and result
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HardnessConfig:
    """topk_ratios: run the model with these ratios (None: its own). gt_root: a Cityscapes root to find
    ground truth in (None: only next to images in the Cityscapes layout). band_width: the fixed baseline band
    in pixels at 1024 x 2048. panel_width: pixels per figure panel. threads: torch's intra-op threads while
    the figures are drawn on another thread. runtime: what runs the model (``inference/runtime.py``).
    focus (and focus_scale, focus_tile, focus_halo, focus_rank): also run focus inference at this budget
    (``inference/focus.py``) and show which tiles it re-ran at full resolution."""

    topk_ratios: tuple[float, ...] | None = None
    gt_root: Path | None = None
    classes: ClassSet | None = None  # a folder data set's classes: masks (ROOT/{split}/masks/, or images/../masks/)
    max_images: int | None = None
    band_width: float = DEFAULT_BAND_WIDTH
    panel_width: int = 512
    thumbnail_width: int = 256
    threads: int | None = 1  # torch intra-op threads during the run (None: leave torch's setting)
    runtime: str = "torch"
    focus: float | None = None
    focus_scale: float = 0.5
    focus_tile: int = 256
    focus_halo: int = 32
    focus_rank: str = "auto"
    selector_cue: str | None = None  # run the model with this cue (None: its own); see InferenceConfig

    def __post_init__(self) -> None:
        check_runtime(self.runtime)
        self.inference()  # refuses bad focus settings now
        if self.topk_ratios is not None and any(not 0.0 < r <= 1.0 for r in self.topk_ratios):
            raise ConfigError(
                f"Top-K ratios for show-hardness must lie in (0, 1]; got {self.topk_ratios}. (0 turns a branch off "
                "and leaves no region to show.)"
            )
        if self.max_images is not None and self.max_images < 1:
            raise ConfigError(f"max_images must be at least 1; got {self.max_images}.")
        if not self.band_width > 0:
            raise ConfigError(f"The band width must be a positive number of pixels; got {self.band_width}.")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be at least 1; got {self.threads}.")
        if not 192 <= self.panel_width <= 2048:
            raise ConfigError(f"panel_width must be between 192 and 2048 pixels; got {self.panel_width}.")

    def inference(self) -> InferenceConfig:
        return InferenceConfig(amp=True, runtime=self.runtime, focus=self.focus, focus_scale=self.focus_scale,
                               focus_tile=self.focus_tile, focus_halo=self.focus_halo, focus_rank=self.focus_rank,
                               selector_cue=self.selector_cue)


@dataclass
class HardnessReport:
    """What a run wrote and measured; ``to_dict()`` is summary.json."""

    out: Path
    model: dict[str, Any]
    summary: HardnessSummary
    images: list[ImageHardness]
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "seconds": round(self.seconds, 3),
            "definitions": {
                "hardness": "mean importance S = sigmoid(z) over the feature grid",
                "coverage": "share of evaluated pixels inside the region",
                "error_recall": "share of wrongly predicted evaluated pixels inside the region",
                "area": "share of all pixels inside the Top-K region (images with and without ground truth)",
                "band": "pixels within d px of a predicted boundary (no ground truth used), d at 1024x2048 "
                "scaled with the image size",
                "band_area_matched": "the band at the selector's coverage: the nested bands around it mixed "
                "(all of the narrower, a share 'mix' of the ring to the wider)",
                "gt_band": "pixels within d px of a ground-truth boundary (a reference, not a heuristic)",
            },
            "summary": self.summary.to_dict(),
            "failed": [{"path": p, "error": e} for p, e in self.failed],
            "per_image": [im.to_dict() for im in self.images],
        }


# --------------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------------


def show_hardness(
    loaded: LoadedModel,
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    config: HardnessConfig = HardnessConfig(),
    *,
    on_image: Callable[[int, int, Path, str], None] | None = None,
    weights: dict[str, str] | None = None,
    notify: Callable[[str], None] | None = None,
) -> HardnessReport:
    """Analyse every image of ``inputs`` with ``loaded`` and write figures, gallery and summary under ``out``.

    ``on_image(done, total, path, status)`` reports progress (status: "done", "failed"). A file that cannot
    be read is reported, listed in ``failed`` and skipped. ``weights`` (the reference given and where it came
    from) is recorded with the model. ``notify`` hears which runtime runs the model (one line).
    """
    from ..viz.gallery import write_gallery

    start = time.perf_counter()
    model, meta = loaded.model, loaded.meta
    require_selector(model, loaded.source)
    if config.topk_ratios is not None:
        model.topk_ratios = config.topk_ratios
    ratios = tuple(float(r) for r in model.topk_ratios)
    if any(r == 0.0 for r in ratios):
        raise ConfigError(
            f"The model runs with Top-K ratios {ratios}; a ratio of 0 turns its branch off and leaves no region to "
            "show. Pass ratios in (0, 1] with --topk, e.g. --topk 0.1,0.2,0.3,0.4."
        )
    out = Path(out)
    jobs = _jobs(inputs, out, config, meta)
    predictor = Predictor(model, config.inference(), notify=notify)
    images: list[ImageHardness] = []
    failed: list[tuple[str, str]] = []
    # The figure of image i is drawn and encoded on a second thread (Pillow and numpy release the GIL)
    # while the model runs on image i + 1; torch gets one intra-op thread so that the two do not fight
    # over the cores (oversubscribed OpenMP threads spin and can run 30x slower on a busy machine).
    with torch_threads(config.threads), ThreadPoolExecutor(max_workers=1) as pool:
        drawing: Future | None = None
        # The next image is decoded on a thread too, while the model runs on this one.
        for i, (job, (image, gt, error)) in enumerate(zip(jobs, ordered_map(lambda j: _load(j, config), jobs, 1))):
            if error is not None:
                failed.append((str(job.path), error))
                _report(on_image, i, len(jobs), job.path, "failed")
                continue
            result, data = _analyze(predictor, loaded, image, gt, job, ratios, config)
            if drawing is not None:
                drawing.result()  # at most one figure in flight: bounded memory, errors surface here
            drawing = pool.submit(_draw, data, out / job.figure, out / job.thumbnail, config)
            images.append(result)
            _report(on_image, i, len(jobs), job.path, "done")
        if drawing is not None:
            drawing.result()
    if not images:
        raise DataError(f"none of the {len(jobs)} images could be read: {failed[0][1]}")
    report = HardnessReport(
        out=out,
        model={
            "architecture": meta.architecture,
            "source": loaded.source,
            "num_classes": meta.num_classes,
            "topk_ratios": list(ratios),
            "selector_cue": getattr(model, "selector_cue", None),
            "stride": int(getattr(model, "stride", 0)),
            "runtime": predictor.runtime_info.to_dict(),
            **({"weights": weights} if weights else {}),
        },
        summary=summarize(images, ratios, config.band_width),
        images=images,
        failed=failed,
    )
    report.seconds = time.perf_counter() - start
    document = report.to_dict()
    atomic_write_text(out / SUMMARY, json.dumps(document, indent=2, allow_nan=False) + "\n")
    write_gallery(document, out / INDEX)
    return report


@dataclass(frozen=True)
class _Job:
    path: Path  # the input image
    rel: Path  # its path below the input given
    figure: Path  # relative to the output folder
    thumbnail: Path
    gt: Path | None  # its label file


def _jobs(inputs: Sequence[str | os.PathLike], out: Path, config: HardnessConfig, meta: ModelMeta) -> list[_Job]:
    """The images to show, where their figures go and their ground truth; input errors raised up front."""
    pairs = find_images(inputs)
    check_output_folder(out, inputs)
    if config.max_images is not None:
        pairs = pairs[: config.max_images]
    figures = output_names(pairs, what="drawn")
    index = GroundTruthIndex(config.gt_root) if config.classes is None else FolderMaskIndex(config.gt_root)
    jobs = [
        _Job(path, rel, fig, Path(THUMBS) / fig.with_suffix(".jpg"), index.find(path))
        for (path, rel), fig in zip(pairs, figures)
    ]
    if config.gt_root is not None and not any(job.gt for job in jobs):
        raise DataError(
            f"none of the {len(jobs)} images has ground truth under {config.gt_root} (looked for "
            f"gtFine/**/<name>_gtFine_labelIds.png, <name> = the image name without _leftImg8bit). Check --gt."
        )
    if config.classes is not None:
        _check_folder_truth(config.classes, meta, any(job.gt for job in jobs))
    elif any(job.gt for job in jobs) and meta.num_classes != 19:
        raise ConfigError(
            f"The model predicts {meta.num_classes} classes, but Cityscapes ground truth needs the 19 Cityscapes "
            "classes. Use a Cityscapes model, or drop the ground truth (inputs outside the Cityscapes layout, no --gt)."
        )
    return jobs


def _check_folder_truth(classes: ClassSet, meta: ModelMeta, with_truth: bool) -> None:
    check_model_classes(meta.class_names, meta.architecture, classes)
    # The analysis (hardness/analysis.py) counts in Cityscapes' label-id space, where 19 classes are scored:
    # a set of up to 19 classes maps onto it one to one (class i as train id i), a larger one does not.
    if with_truth and classes.num_classes > 19:
        raise ConfigError(
            f"show-hardness scores ground truth for data sets of up to 19 classes; {classes.source} has "
            f"{classes.num_classes}. Show the images without ground truth (leave out --data folder), or evaluate the "
            "model with `fornet eval --data folder` for its scores."
        )


def _load(job: _Job, config: HardnessConfig) -> tuple[Any, Any, str | None]:
    """An image and its ground truth, or why they cannot be read."""
    try:
        image = read_image(job.path)
        return image, _read_truth(job, image.shape, config.classes) if job.gt is not None else None, None
    except DataError as exc:
        return None, None, str(exc)


def _read_truth(job: _Job, shape: tuple[int, ...], classes: ClassSet | None) -> Any:
    """An image's ground truth as Cityscapes label ids (the analysis' space): a labelIds file, or a folder
    data set's mask with class i as train id i (ignored pixels become "unlabeled", which is never scored)."""
    assert job.gt is not None
    if classes is None:
        return read_ground_truth(job.gt, shape, job.path)
    from ..data.cityscapes import check_size

    mask = read_mask(job.gt, classes)
    check_size(mask, job.gt, shape, job.path)
    return TRAIN_ID_TO_ID[mask]


def _analyze(
    predictor: Predictor,
    loaded: LoadedModel,
    image: np.ndarray,
    gt: np.ndarray | None,
    job: _Job,
    ratios: tuple[float, ...],
    config: HardnessConfig,
) -> tuple[ImageHardness, HardnessFigureData]:
    """Run the model on one image; its numbers and what its figure shows."""
    meta = loaded.meta
    x = normalize(image, meta.mean, meta.std)
    output = predictor.fornet_outputs(x)
    pred = output.logits[0].argmax(dim=0).cpu()
    focus = None if config.focus is None else FocusView.of(predictor.focus(x), pred.numpy(), config.focus)
    z, masks = output.importance[0, 0].cpu(), output.masks[0].cpu() > 0.5
    result, maps = analyze_image(
        pred, z, masks, ratios, None if gt is None else torch.from_numpy(gt),
        name=display_name(job.rel), band_width=config.band_width, gap=logit_gap(output.logits[0].cpu()),
    )
    result.extra = {
        "input": str(job.path),
        "figure": job.figure.as_posix(),
        "thumbnail": job.thumbnail.as_posix(),
        "ground_truth": None if job.gt is None else str(job.gt),
    }
    if focus is not None:
        result.extra["focus"] = focus.to_dict()
    palette = class_palette(meta.num_classes, meta.palette)
    model = loaded.model
    data = _figure_data(image, pred, z, masks, result, maps, meta, palette, int(getattr(model, "stride", 0)), job.rel,
                        loaded.source, job.gt, chosen_by(getattr(model, "selector_cue", None)))
    return result, replace(data, focus=focus)


def _draw(data: HardnessFigureData, figure: Path, thumb: Path, config: HardnessConfig) -> None:
    _save(compact(render_hardness_figure(data, config.panel_width)), figure, "PNG", compress_level=6)
    _save(thumbnail(data, config.thumbnail_width), thumb, "JPEG", quality=85)


def display_name(rel: Path) -> str:
    """The name shown for an image: its path below the input, without the extension."""
    return rel.with_suffix("").as_posix()


def _figure_data(
    image: np.ndarray,
    pred: torch.Tensor,
    z: torch.Tensor,
    masks: torch.Tensor,
    result: ImageHardness,
    maps: ImageMaps | None,
    meta: ModelMeta,
    palette: np.ndarray,
    stride: int,
    rel: Path,
    source: str,
    gt_path: Path | None,
    chooser: str,
) -> HardnessFigureData:
    gt_view = None
    if maps is not None and result.topk is not None and result.gt_band is not None:
        gt_view = GroundTruthView(
            evaluated=maps.evaluated.numpy(),
            wrong=maps.wrong.numpy(),
            band=maps.gt_band.numpy(),
            band_width=result.band_width,
            miou=result.miou,
            error_rate=result.error_rate,
            error_recall=result.topk.error_recall,
            band_share=result.gt_band.coverage[0],
            band_inside=result.gt_band_inside,
        )
    if gt_view is not None:
        numbers = (
            f"mIoU {100 * result.miou:.1f}%  |  {100 * result.error_rate:.1f}% of pixels wrong  |  "
            f"hardness (mean S) {result.importance_mean:.3f}"
        )
    else:
        numbers = f"no ground truth  |  hardness (mean S) {result.importance_mean:.3f}"
    ratios = ", ".join(f"{r:g}" for r in result.ratios)
    return HardnessFigureData(
        image=image,
        importance=torch.sigmoid(z).numpy(),
        masks=masks.numpy(),
        ratios=result.ratios,
        coverage=result.area,
        prediction=pred.numpy(),
        palette=palette,
        class_names=meta.class_names,
        stride=stride,
        header=(f"{rel.as_posix()}  |  {meta.architecture} ({source}), Top-K ratios {ratios} chosen by {chooser}",
                numbers),
        image_notes=(f"ground truth: {gt_path.name}" if gt_path is not None else "no ground truth found",),
        ground_truth=gt_view,
    )


def _save(image: Any, target: Path, fmt: str, **options: Any) -> None:
    """Save a Pillow image atomically (temporary file + rename)."""
    with atomic_path(target) as tmp:
        image.save(tmp, format=fmt, **options)


def _report(cb: Callable[[int, int, Path, str], None] | None, i: int, n: int, path: Path, status: str) -> None:
    if cb is not None:
        cb(i + 1, n, path, status)
