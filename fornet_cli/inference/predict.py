"""Batch prediction over files, folders and globs, writing masks that mirror the input tree.

Formats: ``trainid`` (uint8 train ids), ``labelid`` (Cityscapes label ids, what the official server and
``fornet eval --predictions`` take), ``color`` (the palette), ``overlay`` (the palette blended on the image).
Existing outputs are kept unless ``overwrite``; input files are never written; a file that cannot be read
is reported and skipped.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.io import find_images, image_size, output_names, read_image, write_png
from ..data.labels import TRAIN_ID_TO_ID
from ..data.normalize import Normalizer
from ..errors import ConfigError, DataError, OutputError
from ..fsutil import check_output_folder, write_failure
from ..pipeline import ordered_map
from ..weights.format import ModelMeta
from .predictor import Predictor

FORMATS = ("trainid", "labelid", "color", "overlay")
# In whole mode an image goes through the model at once, and activations grow with its pixels (fornet_mbv3
# needs about 0.3 kB per pixel, fornet_r101 far more): beyond this, predict refuses the image and advises
# --mode slide, whose windows keep the model's memory fixed. 4096 x 4096 is 8 Cityscapes frames.
MAX_WHOLE_PIXELS = 4096 * 4096


@dataclass(frozen=True)
class PredictConfig:
    formats: tuple[str, ...] = ("trainid",)
    overwrite: bool = False
    allow_input_tree: bool = False  # write outputs inside an input folder
    overlay_alpha: float = 0.5
    max_whole_pixels: int | None = MAX_WHOLE_PIXELS  # larger images need --mode slide; None: no limit
    readers: int = 2  # threads decoding the next images while the model runs (0: in the calling thread)
    writers: int = 1  # threads encoding and writing masks

    def __post_init__(self) -> None:
        bad = [f for f in self.formats if f not in FORMATS]
        if bad or not self.formats:
            raise ConfigError(f"Unknown output format(s) {bad or '(none)'}; choose from {', '.join(FORMATS)}.")
        if not 0.0 <= self.overlay_alpha <= 1.0:
            raise ConfigError("overlay_alpha must be between 0 and 1.")
        if self.readers < 0 or self.writers < 1:
            raise ConfigError("readers must be at least 0 and writers at least 1.")


@dataclass
class PredictSummary:
    images: int = 0
    written: int = 0
    skipped_existing: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    runtime: dict[str, Any] | None = None  # what ran the model (Predictor.runtime_info)
    shards: list[dict[str, int]] | None = None  # per process, when the run was split (merged())

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    @classmethod
    def merged(cls, shards: Sequence[PredictSummary]) -> PredictSummary:
        """The summary of a run split over processes (``torchrun``): counts added, the longest time, the
        first shard's runtime, and each shard's counts under ``shards``."""
        total = cls(runtime=shards[0].runtime if shards else None)
        for part in shards:
            total.images += part.images
            total.written += part.written
            total.skipped_existing += part.skipped_existing
            total.failed += part.failed
            total.seconds = max(total.seconds, part.seconds)
        total.shards = [{"rank": r, "images": p.images, "written": p.written, "skipped_existing": p.skipped_existing,
                         "failed": len(p.failed)} for r, p in enumerate(shards)]
        return total

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "written": self.written,
            "skipped_existing": self.skipped_existing,
            "failed": [{"path": p, "error": e} for p, e in self.failed],
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.images_per_second, 3),
            "runtime": self.runtime,
            **({"shards": self.shards} if self.shards is not None else {}),
        }


def output_paths(out: Path, rel: Path, formats: Sequence[str]) -> dict[str, Path]:
    """Where each format of one input goes: ``OUT/rel.png`` for one format, ``OUT/<format>/rel.png`` for several."""
    name = rel.with_suffix(".png")
    if len(formats) == 1:
        return {formats[0]: out / name}
    return {fmt: out / fmt / name for fmt in formats}


def palette_of(meta: ModelMeta) -> np.ndarray:
    """``num_classes x 3`` uint8 colours (the model's palette, else a fixed pseudo-random one)."""
    if meta.palette:
        return np.asarray(meta.palette, dtype=np.uint8)
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(meta.num_classes, 3), dtype=np.uint8)


def encode(fmt: str, train_ids: np.ndarray, image: np.ndarray, meta: ModelMeta, alpha: float) -> np.ndarray:
    if fmt == "trainid":
        return train_ids.astype(np.uint8)
    if fmt == "labelid":
        return TRAIN_ID_TO_ID[train_ids]
    color = palette_of(meta)[train_ids]
    if fmt == "color":
        return color
    return (image.astype(np.float32) * (1 - alpha) + color.astype(np.float32) * alpha).round().astype(np.uint8)


def _check_out(out: Path, pairs: list[tuple[Path, Path]], inputs: Sequence[str | os.PathLike], allow_inside: bool) -> None:
    check_output_folder(out, inputs, allow_inside=allow_inside, allow_hint="--allow-input-tree")
    output_names(pairs, what="written")


def _too_large(path: Path, predictor: object, limit: int | None) -> str | None:
    """Why ``path`` is too large for whole-image inference, from its header (nothing decoded); None if it fits."""
    if limit is None or not isinstance(predictor, Predictor) or predictor.config.mode != "whole":
        return None
    size = image_size(path)
    if size is None:  # unreadable: read_image explains it
        return None
    w, h = size
    scale = max(predictor.config.scales)
    pixels = w * h * scale * scale
    if pixels <= limit:
        return None
    tta = f" at the largest TTA scale {scale:g}" if scale != 1 else ""
    return (
        f"{path} is {w}x{h} pixels ({pixels / 1e6:.1f} MP{tta}), more than --mode whole runs at once "
        f"({limit / 1e6:.1f} MP; the memory it needs grows with the image). Predict it with --mode slide "
        "(windows of --crop, fixed memory), or resize it."
    )


@dataclass
class _Item:
    """One input on its way through the pipeline: read (or skipped, or failed), predicted, written."""

    index: int
    path: Path
    targets: dict[str, Path]
    status: str = "todo"  # todo | skipped | failed
    error: str = ""
    image: np.ndarray | None = None  # uint8 H x W x 3, kept only for the overlay format
    x: np.ndarray | None = None  # normalised 3 x H x W float32
    labels: np.ndarray | None = None  # H x W class indices


def shard(items: Sequence[Any], rank: int, world: int) -> list[Any]:
    """Rank ``rank``'s share of ``items`` out of ``world`` (every ``world``-th, from ``rank``): the shares are
    disjoint and together hold every item once."""
    if not 0 <= rank < world:
        raise ConfigError(f"rank {rank} is not in 0..{world - 1}.")
    return list(items[rank::world])


def predict_images(
    predictor: Predictor | Callable[[torch.Tensor], torch.Tensor],
    meta: ModelMeta,
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    config: PredictConfig = PredictConfig(),
    *,
    on_image: Callable[[int, int, Path, str], None] | None = None,
    ranks: tuple[int, int] = (0, 1),
) -> PredictSummary:
    """Predict every image in ``inputs`` and write the requested formats under ``out``.

    ``predictor`` maps a normalised ``B x 3 x H x W`` tensor to ``B x H x W`` class indices (a
    :class:`Predictor`, or any callable). ``on_image(done, total, path, status)`` reports progress.
    ``ranks = (rank, world)`` predicts only this process's share (:func:`shard`) of the images, e.g. under
    ``torchrun``; the checks of the whole input (name clashes, the output folder) run on every rank alike.

    Reading and decoding run ahead on ``config.readers`` threads and writing behind on ``config.writers``
    threads while the model runs; consecutive images of one size go through the model ``batch_size`` at a
    time (the Predictor's). At most a few images are in memory at once, however many are given.
    """
    if "labelid" in config.formats and meta.num_classes != 19:
        raise ConfigError(
            f"--format labelid maps Cityscapes' 19 train ids to label ids; this model has {meta.num_classes} classes."
        )
    out = Path(out)
    pairs = find_images(inputs)
    _check_out(out, pairs, inputs, config.allow_input_tree)
    input_files = {f.resolve() for f, _ in pairs}
    mine = shard(list(enumerate(pairs)), *ranks)
    summary = PredictSummary(images=len(mine))
    normalizer = Normalizer(meta.mean, meta.std)
    batch = predictor.config.batch_size if isinstance(predictor, Predictor) else 1
    label = predictor.labels if isinstance(predictor, Predictor) else predictor
    done = 0

    def report(item: _Item, status: str) -> None:
        nonlocal done
        done += 1
        _report(on_image, done - 1, len(mine), item.path, status)

    def read(job: tuple[int, tuple[Path, Path]]) -> _Item:
        return _read(job, out, config, input_files, predictor, normalizer)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(config.writers, thread_name_prefix="fornet-write") as writer:
        writing: deque[tuple[_Item, Future]] = deque()
        group: list[_Item] = []
        items = ordered_map(read, mine, config.readers, ahead=config.readers + 2 * batch, name="fornet-read")
        with closing(items):  # stops the readers if the model or a write fails
            for item in items:
                if item.status != "todo":
                    summary.skipped_existing += item.status == "skipped"
                    if item.status == "failed":
                        summary.failed.append((str(item.path), item.error))
                    report(item, item.status)
                    continue
                if group and (len(group) >= batch or group[0].x.shape != item.x.shape):  # type: ignore[union-attr]
                    _infer(group, label, writer, writing, meta, config)
                    group = []
                    _collect(writing, summary, report, block=False)
                group.append(item)
            if group:
                _infer(group, label, writer, writing, meta, config)
        _collect(writing, summary, report, block=True)
    summary.seconds = time.perf_counter() - t0
    return summary


def _read(job: tuple[int, tuple[Path, Path]], out: Path, config: PredictConfig, input_files: set[Path],
          predictor: object, normalizer: Normalizer) -> _Item:
    """Plan, decode and normalise one input (on a reader thread)."""
    index, (path, rel) = job
    targets = output_paths(out, rel, config.formats)
    item = _Item(index, path, targets)
    clash = [t for t in targets.values() if t.resolve() in input_files]
    if clash:
        item.status, item.error = "failed", f"output {clash[0]} would overwrite an input file"
        return item
    item.targets = {fmt: t for fmt, t in targets.items() if config.overwrite or not t.exists()}
    if not item.targets:
        item.status = "skipped"
        return item
    try:
        reason = _too_large(path, predictor, config.max_whole_pixels)
        if reason is not None:
            raise DataError(reason)
        image = read_image(path)
    except DataError as exc:
        item.status, item.error = "failed", str(exc)
        return item
    item.x = normalizer(image)
    item.image = image if "overlay" in item.targets else None
    return item


def _infer(group: list[_Item], label: Callable[[torch.Tensor], torch.Tensor], writer: ThreadPoolExecutor,
           writing: deque, meta: ModelMeta, config: PredictConfig) -> None:
    """Run the model on a group of same-size images and hand each result to the writers."""
    x = torch.from_numpy(np.stack([item.x for item in group])) if len(group) > 1 else torch.from_numpy(group[0].x)[None]  # type: ignore[misc]
    labels = label(x).to("cpu").numpy()
    for item, mask in zip(group, labels):
        item.x, item.labels = None, mask  # the float image is no longer needed
        writing.append((item, writer.submit(_write, item, meta, config)))


def _write(item: _Item, meta: ModelMeta, config: PredictConfig) -> None:
    assert item.labels is not None
    for fmt, target in item.targets.items():
        write_png(target, encode(fmt, item.labels, item.image, meta, config.overlay_alpha))  # type: ignore[arg-type]
    item.labels = item.image = None


def _collect(writing: deque, summary: PredictSummary, report: Callable[[_Item, str], None], block: bool) -> None:
    """Count the finished writes in order (all of them with ``block``); a failed write stops the run."""
    while writing and (block or writing[0][1].done()):
        item, future = writing.popleft()
        try:
            future.result()
        except OSError as exc:  # full disk, permissions: stop, since every later image would fail the same way
            target = next(iter(item.targets.values()))
            raise OutputError(
                f"Could not write {target} ({write_failure(target, exc)}). No partial file was left, and the "
                f"{summary.written} images before it are complete. Free some space (or fix the folder's "
                "permissions) and run the same command again: images whose outputs exist are skipped."
            ) from None
        summary.written += 1
        report(item, "written")


def _report(cb: Callable[[int, int, Path, str], None] | None, i: int, n: int, path: Path, status: str) -> None:
    if cb is not None:
        cb(i + 1, n, path, status)
