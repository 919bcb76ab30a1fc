"""The training loop: iteration-based, resumable, single process or DDP under torchrun.

:func:`train` sets up a :class:`Trainer` and runs it. One optimisation step is :meth:`Trainer.step`; what
happens around it (logging, validation, checkpoints) is :meth:`Trainer.fit`. Data order and augmentation are
pure functions of (seed, iteration) (``data.py``), and a checkpoint holds the RNG states (``state.py``), so a
run resumed from ``checkpoints/last.pt`` continues exactly as an uninterrupted run would have.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import distributed as dist
from .._version import __version__
from ..errors import DataError, FornetError
from ..fsutil import atomic_write_text
from ..model import get_entry
from ..weights.checkpoint import BEST, CHECKPOINT_DIR, LAST, load_checkpoint, save_checkpoint
from .build import build_model, is_peer, place
from .config import TrainConfig
from .curve import RunCurve
from .data import EpochSampler, SeededSamples, ValSamples, batches, label_set, open_datasets, with_label_set
from .losses import FornetLoss, LossTerms
from .optim import amp_dtype, build_optimizer, lr_factor
from .run_dir import BEST_METRICS_NAME, LOG_NAME, JsonLog, prepare_run_dir, write_config
from .state import restore, resume_part, resume_state, rng_state
from .validation import validate

__all__ = ["EpochSampler", "TrainResult", "Trainer", "TrainingError", "lr_factor", "train"]

Event = dict[str, Any]
Callback = Callable[[Event], None]


class TrainingError(FornetError):
    """Training cannot go on (NaN loss, ...). The last good checkpoint is kept."""


@dataclass
class TrainResult:
    run_dir: Path
    iteration: int
    best_miou: float | None
    last_checkpoint: Path
    history: list[dict[str, Any]]  # validation results
    model: nn.Module  # the trained model (this process's copy), in eval mode


def train(
    config: TrainConfig,
    out: str | os.PathLike,
    *,
    resume: bool = False,
    force: bool = False,
    callback: Callback | None = None,
    stop_at: int | None = None,
) -> TrainResult:
    """Train ``config`` into the run folder ``out``. ``stop_at`` ends this process early (as a kill would)."""
    info = dist.setup(config.device)
    emit = callback if (callback is not None and info.is_main) else (lambda e: None)
    try:
        if not is_peer(config):
            get_entry(config.model)  # an unknown model name fails before any folder is touched
        if not resume:
            config, _ = with_label_set(config)  # so does a bad classes file; the count follows the file
        run = prepare_run_dir(out, config, resume=resume, force=force) if info.is_main else Path(out)
        dist.barrier()
        state = resume_state(run / CHECKPOINT_DIR / LAST) if resume else None
        if state is not None:
            config = _saved_config(run, config, state, emit)
        trainer = Trainer(config, run, info, emit, state)
        if info.is_main and not resume:
            write_config(run, config, info.world_size, trainer.classes)
        end = config.iters if stop_at is None else min(config.iters, stop_at)
        trainer.fit(end)
        return trainer.result()
    finally:
        dist.cleanup()


def _saved_config(run: Path, config: TrainConfig, state: dict[str, Any], emit: Callback) -> TrainConfig:
    """A resumed run continues with the config it was started with; changes asked for now are ignored (said)."""
    saved = resume_part(run / CHECKPOINT_DIR / LAST, "config", lambda: TrainConfig.from_dict(state["config"]))
    if saved.to_dict() != config.to_dict():
        changed = sorted(k for k, v in saved.to_dict().items() if config.to_dict().get(k) != v)
        emit({"type": "note", "message": f"resuming with the run's saved config (ignoring changes to {', '.join(changed)})"})
    return saved


def _check_resumed_classes(state: dict[str, Any], last: Path, classes: Any) -> None:
    """A resumed run must still see the classes it was started with (a classes file edited since is refused)."""
    from ..data.classes import check_model_classes

    meta = state.get("meta")
    if isinstance(meta, dict) and isinstance(meta.get("class_names"), list):
        check_model_classes(meta["class_names"], str(last), classes)


def _seed(config: TrainConfig) -> None:
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    np.random.seed(config.seed)
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


class _LossMeter:
    """Sums the loss terms between two log lines and times them."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.sums = {"loss": 0.0, "ce": 0.0, "dice": 0.0, "selector": 0.0, "aux": 0.0}
        self.steps, self.start = 0, time.perf_counter()

    def add(self, terms: LossTerms) -> None:
        for key, value in zip(self.sums, terms):
            self.sums[key] += float(value.detach())
        self.steps += 1

    def entry(self, iteration: int, lr: float, images_per_step: int) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.start
        return {
            "iter": iteration,
            **{k: round(v / self.steps, 5) for k, v in self.sums.items()},
            "lr": lr,
            "it_s": round(self.steps / elapsed, 3),
            "img_s": round(self.steps * images_per_step / elapsed, 3),
            "time": time.time(),
        }


class Trainer:
    """One training run in this process: model, optimiser, schedule, data, and the run's progress."""

    def __init__(
        self, config: TrainConfig, run: Path, info: dist.DistInfo, emit: Callback, state: dict[str, Any] | None
    ) -> None:
        from ..data.transforms import TransformSettings, eval_transforms, train_transforms

        self.config, self.run, self.info, self.emit = config, run, info, emit
        _seed(config)
        settings = TransformSettings(crop_size=config.crop, scale_range=config.scale_range)
        self.classes = label_set(config)
        train_set, val_set = open_datasets(config, info.is_main, self.classes)
        self.sampler = EpochSampler(len(train_set), config.batch, info.world_size, info.rank, config.seed)
        if self.sampler.steps_per_epoch == 0:
            raise DataError(
                f"The training split has {len(train_set)} images, fewer than one batch "
                f"({config.batch} x {info.world_size} processes). Lower --batch or add images."
            )
        model, self.meta = build_model(config, settings.mean, settings.std, pretrained=state is None,
                                       classes=self.classes)
        self.model, self.step_model, self.channels_last = place(model, config, info)
        self.optimizer = build_optimizer(self.model, config)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: lr_factor(step, config))
        self.amp_dtype = amp_dtype(config, info.device)
        self.scaler = torch.amp.GradScaler(info.device.type, enabled=self.amp_dtype == torch.float16)
        self.loss_fn = FornetLoss(config.loss)
        self.data = SeededSamples(train_set, train_transforms(settings), config.seed)
        self.val_data = ValSamples(val_set, eval_transforms(settings), config.val_max_images)
        self.iteration, self.best, self.history = 0, None, []
        last = run / CHECKPOINT_DIR / LAST
        if state is not None:
            _check_resumed_classes(state, last, self.classes)
            self.iteration, self.best, self.history = resume_part(
                last, "training state", lambda: restore(state, self.model, self.optimizer, self.scheduler, self.scaler)
            )
        self.log = JsonLog(run / LOG_NAME, self.iteration if state is not None else None) if info.is_main else None
        self.curve = RunCurve(run, run / LOG_NAME, config.model, config.iters) if info.is_main else None

    # ---------------------------------------------------------------------------------------------- one step

    def step(self, images: torch.Tensor, labels: torch.Tensor) -> LossTerms:
        """One optimisation step on a batch; returns the loss terms."""
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.info.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            out = self.step_model(images)
        terms = self.loss_fn(out.logits.float(), labels, out.importance, out.aux)
        if not torch.isfinite(terms.total):
            raise self._diverged(terms)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(terms.total).backward()
        if self.config.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.iteration += 1
        return terms

    def _diverged(self, terms: LossTerms) -> TrainingError:
        last = self.run / CHECKPOINT_DIR / LAST
        good = load_checkpoint(last)["iteration"] if last.is_file() else None
        where = f"{last} (iteration {good})" if good is not None else "none was written yet"
        return TrainingError(
            f"The loss became {terms.total.item()} at iteration {self.iteration + 1} (ce {terms.ce.item():.4g}, dice "
            f"{terms.dice.item():.4g}, selector {terms.selector.item():.4g}). Training stopped; the last good "
            f"checkpoint is {where}. Lower --lr, set --grad-clip, or use --amp off."
        )

    # ---------------------------------------------------------------------------------------------- the run

    def fit(self, end: int) -> None:
        """Train up to iteration ``end``: log every ``log_every``, validate every ``val_every`` (and at the
        last iteration), write ``last.pt`` every ``ckpt_every`` (and at ``end``)."""
        c = self.config
        self.emit({"type": "start", "iteration": self.iteration, "iters": c.iters, "run_dir": str(self.run),
                   "device": str(self.info.device), "world_size": self.info.world_size,
                   "train_images": len(self.data), "val_images": len(self.val_data)})
        self.step_model.train()
        stream = batches(self.data, self.sampler, c, self.iteration, self.info.device)
        meter = _LossMeter()
        while self.iteration < end:
            meter.add(self.step(*next(stream)))
            it = self.iteration
            if it % c.log_every == 0 or it == end:
                self._log_step(meter.entry(it, self.optimizer.param_groups[0]["lr"], c.batch * self.info.world_size))
                meter.reset()
            if it % c.val_every == 0 or it == c.iters:
                self.validate()
            if it % c.ckpt_every == 0 or it == end:
                dist.broadcast_buffers(self.model)
                path = self.save(LAST)
                self.emit({"type": "checkpoint", "iter": it, "path": str(path)})
        dist.broadcast_buffers(self.model)  # the returned model equals the saved one on every rank
        if self.curve is not None:
            self.curve.write(self.iteration, self.best, running=False)
        dist.barrier()
        self.emit({"type": "end", "iter": self.iteration, "best_miou": self.best, "run_dir": str(self.run)})

    def _log_step(self, entry: dict[str, Any]) -> None:
        if self.log is not None:
            self.log.write(entry)
        if self.curve is not None:
            self.curve.add(entry, self.iteration, self.best)
        self.emit({"type": "step", **entry, "iters": self.config.iters})

    def validate(self) -> dict[str, Any]:
        """Score the model on the validation split; a new best is saved as ``best.pt``."""
        dist.broadcast_buffers(self.model)  # every rank validates with rank 0's BatchNorm statistics
        scores = validate(self.model, self.val_data, self.info.device, self.info, self.classes.names)
        self.step_model.train()
        it, miou = self.iteration, scores["miou"]
        self.history.append({"iter": it, **scores})
        if self.log is not None:
            self.log.write({"iter": it, "val": scores})
        if self.best is None or (miou is not None and miou > self.best):
            if miou is not None:
                self.best = miou
                self.save(BEST)
                if self.info.is_main:
                    text = json.dumps({"iter": it, **scores}, indent=2) + "\n"
                    atomic_write_text(self.run / BEST_METRICS_NAME, text)
        if self.curve is not None:
            self.curve.add({"iter": it, "val": scores}, it, self.best)
        self.emit({"type": "val", "iter": it, "best": self.best, **scores})
        return scores

    def save(self, kind: str) -> Path:
        """Write the checkpoint ``kind`` (last.pt or best.pt) with everything a resume needs (rank 0 only)."""
        path = self.run / CHECKPOINT_DIR / kind
        if self.info.is_main:
            save_checkpoint(path, {
                "model": self.model.state_dict(),
                "meta": None if self.meta is None else self.meta.to_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "iteration": self.iteration,
                "rng": rng_state(),
                "config": self.config.to_dict(),
                "best_miou": self.best,
                "history": self.history,
                "fornet_version": __version__,
            })
        return path

    def result(self) -> TrainResult:
        last = self.run / CHECKPOINT_DIR / LAST
        return TrainResult(self.run, self.iteration, self.best, last, self.history, self.model.eval())
