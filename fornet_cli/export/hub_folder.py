"""A Hugging Face Hub folder: ``model.safetensors`` + ``config.json`` + a ``README.md`` model card.

Built in a temporary folder next to the target, loaded back and compared with the original model, then
renamed into place; ready for ``hf upload`` and loadable with ``--weights DIR``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from torch import nn

from ..model.complexity import count_macs, count_parameters
from ..weights.checkpoint import BEST, run_checkpoint
from ..weights.format import CONFIG_NAME, WEIGHTS_NAME, ModelMeta, load_pretrained, save_pretrained
from .model_card import model_card
from .verify import Check, compare, eager, require_passed, scene_batch

README_NAME = "README.md"


def run_metrics(source: str | None) -> dict[str, Any] | None:
    """The run's ``best_metrics.json`` when the weights are that run's best checkpoint, else None."""
    if not source:
        return None
    path = Path(source)
    if path.is_dir():  # a run folder resolves to its checkpoints/best.pt (else last.pt)
        path = run_checkpoint(path) or path
    if path.name != BEST:
        return None  # last.pt: the best metrics belong to other weights
    try:
        data = json.loads((path.parent.parent / "best_metrics.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def export_hub(
    model: nn.Module,
    meta: ModelMeta,
    out: Path,
    *,
    height: int,
    width: int,
    license: str = "mit",
    tolerance: float | None = None,
    source: str | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> tuple[list[Check], dict[str, Any]]:
    """Write and verify the folder ``out`` (replacing an existing one only once the new one is verified)."""
    metrics = run_metrics(source) or meta.extra.get("metrics")
    if metrics:
        meta = replace(meta, extra={**meta.extra, "metrics": metrics})  # travels with config.json
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        progress("writing model.safetensors, config.json and README.md")
        save_pretrained(model, tmp, meta)  # type: ignore[arg-type]
        card = model_card(
            meta, parameters=count_parameters(model), gmacs=count_macs(model, 1024, 2048) / 1e9,
            metrics=metrics, license=license,
        )
        (tmp / README_NAME).write_text(card, encoding="utf-8")
        progress(f"verifying: loading the folder back and predicting at {height}x{width}")
        reloaded, _ = load_pretrained(tmp)
        x = scene_batch(1, height, width, meta)
        checks = [compare(eager(model, x), eager(reloaded, x), "exact", "load_pretrained", tolerance, x.shape)]
        require_passed(checks, "Hub folder")
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    details = {"files": [WEIGHTS_NAME, CONFIG_NAME, README_NAME], "license": license, "metrics": bool(metrics),
               "upload": f"hf upload <org>/<repo> {out} ."}
    return checks, details


def _replace_dir(new: Path, target: Path) -> None:
    """Move a finished folder into place; an existing target is swapped out first, then deleted."""
    if not target.exists():
        new.rename(target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    old.rmdir()  # only its unique name is wanted
    target.rename(old)
    try:
        new.rename(target)
    except BaseException:
        old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)
