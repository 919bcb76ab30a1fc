"""Batch prediction over files, folders and globs, writing masks that mirror the input tree.

Formats: ``trainid`` (uint8 train ids), ``labelid`` (Cityscapes label ids, what the official server and
``fornet eval --predictions`` take), ``color`` (the palette), ``overlay`` (the palette blended on the image).
Existing outputs are kept unless ``overwrite``; input files are never written; a file that cannot be read
is reported and skipped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.io import find_images, read_image, write_png
from ..data.labels import TRAIN_ID_TO_ID
from ..errors import ConfigError, DataError
from ..model.pretrained import ModelMeta
from .inference import Predictor

FORMATS = ("trainid", "labelid", "color", "overlay")


@dataclass(frozen=True)
class PredictConfig:
    formats: tuple[str, ...] = ("trainid",)
    overwrite: bool = False
    allow_input_tree: bool = False  # write outputs inside an input folder
    overlay_alpha: float = 0.5

    def __post_init__(self) -> None:
        bad = [f for f in self.formats if f not in FORMATS]
        if bad or not self.formats:
            raise ConfigError(f"Unknown output format(s) {bad or '(none)'}; choose from {', '.join(FORMATS)}.")
        if not 0.0 <= self.overlay_alpha <= 1.0:
            raise ConfigError("overlay_alpha must be between 0 and 1.")


@dataclass
class PredictSummary:
    images: int = 0
    written: int = 0
    skipped_existing: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "written": self.written,
            "skipped_existing": self.skipped_existing,
            "failed": [{"path": p, "error": e} for p, e in self.failed],
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.images_per_second, 3),
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
    out_abs = out.resolve()
    for raw in inputs:
        p = Path(raw)
        if p.is_dir() and not allow_inside and (out_abs == p.resolve() or p.resolve() in out_abs.parents):
            raise ConfigError(
                f"--out {out} lies inside the input folder {p}: fornet does not write into the input tree unless "
                "asked (--allow-input-tree). Choose an output folder outside it."
            )


def predict_images(
    predictor: Predictor | Callable[[torch.Tensor], torch.Tensor],
    meta: ModelMeta,
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    config: PredictConfig = PredictConfig(),
    *,
    on_image: Callable[[int, int, Path, str], None] | None = None,
) -> PredictSummary:
    """Predict every image in ``inputs`` and write the requested formats under ``out``.

    ``predictor`` maps a normalised ``1 x 3 x H x W`` tensor to ``1 x H x W`` class indices (a
    :class:`Predictor`, or an ONNX session wrapper). ``on_image(done, total, path, status)`` reports progress.
    """
    if "labelid" in config.formats and meta.num_classes != 19:
        raise ConfigError(
            f"--format labelid maps Cityscapes' 19 train ids to label ids; this model has {meta.num_classes} classes."
        )
    out = Path(out)
    pairs = find_images(inputs)
    _check_out(out, pairs, inputs, config.allow_input_tree)
    input_files = {f.resolve() for f, _ in pairs}
    predict = predictor.predict if isinstance(predictor, Predictor) else predictor
    mean = torch.tensor(meta.mean).view(1, 3, 1, 1)
    std = torch.tensor(meta.std).view(1, 3, 1, 1)
    summary = PredictSummary(images=len(pairs))
    t0 = time.perf_counter()
    for i, (path, rel) in enumerate(pairs):
        targets = output_paths(out, rel, config.formats)
        clash = [t for t in targets.values() if t.resolve() in input_files]
        if clash:
            summary.failed.append((str(path), f"output {clash[0]} would overwrite an input file"))
            _report(on_image, i, len(pairs), path, "failed")
            continue
        todo = {fmt: t for fmt, t in targets.items() if config.overwrite or not t.exists()}
        if not todo:
            summary.skipped_existing += 1
            _report(on_image, i, len(pairs), path, "skipped")
            continue
        try:
            image = read_image(path)
        except DataError as exc:
            summary.failed.append((str(path), str(exc)))
            _report(on_image, i, len(pairs), path, "failed")
            continue
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float().div_(255)
        x = (x - mean) / std
        train_ids = predict(x)[0].to("cpu", torch.uint8).numpy()
        for fmt, target in todo.items():
            write_png(target, encode(fmt, train_ids, image, meta, config.overlay_alpha))
        summary.written += 1
        _report(on_image, i, len(pairs), path, "written")
    summary.seconds = time.perf_counter() - t0
    return summary


def _report(cb: Callable[[int, int, Path, str], None] | None, i: int, n: int, path: Path, status: str) -> None:
    if cb is not None:
        cb(i + 1, n, path, status)
