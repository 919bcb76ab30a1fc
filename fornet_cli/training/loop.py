"""The training loop: iteration-based, resumable, single process or DDP under torchrun.

Data order and augmentation are pure functions of (seed, iteration): the sampler shuffles each epoch with
``seed + epoch`` and every sample is augmented under an RNG seeded from (seed, epoch, index). So a run
resumed from ``checkpoints/last.pt`` sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from .. import distributed as dist
from .._version import __version__
from ..errors import ConfigError, DataError, FornetError, WeightsError, from_loader_worker
from ..fmt import none_if_nan
from ..fsutil import atomic_write_text
from ..model import FornetModel, FornetOutput, create_model, get_entry
from ..model.outputs import logits_of
from ..model.peers import PEERS, build_peer
from ..weights.checkpoint import BEST, CHECKPOINT_DIR, LAST, load_checkpoint, save_checkpoint
from ..weights.format import meta_for
from .config import TrainConfig
from .losses import FornetLoss

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


# ----------------------------------------------------------------------------------------- data


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` pairs: a per-epoch permutation (seeded by ``seed + epoch``), cut to whole
    global batches, sharded over ranks (rank r takes positions r, r + world, ...), starting at a batch
    offset so that a resumed run continues mid-epoch."""

    def __init__(self, size: int, batch: int, world: int, rank: int, seed: int) -> None:
        self.size, self.batch, self.world, self.rank, self.seed = size, batch, world, rank, seed
        self.steps_per_epoch = size // (batch * world)
        self.epoch = 0
        self.skip_batches = 0

    def set_position(self, epoch: int, skip_batches: int = 0) -> None:
        self.epoch, self.skip_batches = epoch, skip_batches

    def indices(self, epoch: int) -> list[int]:
        g = torch.Generator().manual_seed(self.seed + epoch)
        perm = torch.randperm(self.size, generator=g)[: self.steps_per_epoch * self.batch * self.world]
        return perm[self.rank :: self.world].tolist()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        mine = self.indices(self.epoch)[self.skip_batches * self.batch :]
        return iter([(self.epoch, i) for i in mine])

    def __len__(self) -> int:
        return (self.steps_per_epoch - self.skip_batches) * self.batch


class SeededSamples(Dataset):
    """Wraps a dataset so that item ``(epoch, index)`` is augmented under its own fixed RNG seed."""

    def __init__(self, dataset: Dataset, transform: Callable, seed: int) -> None:
        self.dataset, self.transform, self.seed = dataset, transform, seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, index = key
        sample = self.dataset[index]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed((self.seed * 1_000_003 + epoch * 100_003 + index) % (2**63))
            out = self.transform(sample)
        return out["image"].as_subclass(torch.Tensor), out["mask"].as_subclass(torch.Tensor).long()


def _open_datasets(config: TrainConfig, is_main: bool) -> tuple[Dataset, Dataset]:
    from ..data.cityscapes import CityscapesDataset

    root = _data_root(config, is_main)
    train = CityscapesDataset(root, "train")
    val = CityscapesDataset(root, config.val_split)
    return train, val


def _data_root(config: TrainConfig, is_main: bool) -> str | None:
    if config.data == "cityscapes" or config.root is not None:
        return config.root
    from ..data.synth import default_synth_root, ensure_synth_dataset

    root = default_synth_root(config.synth_train, config.synth_val, config.synth_size, config.seed)
    if is_main:
        ensure_synth_dataset(root, config.synth_train, config.synth_val, config.synth_size, config.seed)
    dist.barrier()
    return str(root)


# ----------------------------------------------------------------------------------------- model & optimiser


def _param_groups(model: FornetModel, config: TrainConfig) -> list[dict[str, Any]]:
    """Backbone / head x decay / no decay: biases and norm weights (1-d tensors) get no weight decay."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        key = (name.startswith("backbone."), p.ndim <= 1)
        groups.setdefault(key, []).append(p)
    out = []
    for (is_backbone, no_decay), params in sorted(groups.items()):
        lr = config.lr * (1.0 if is_backbone else config.head_lr_mult)
        out.append({"params": params, "lr": lr, "initial_lr": lr, "weight_decay": 0.0 if no_decay else config.weight_decay})
    return out


def _optimizer(model: FornetModel, config: TrainConfig) -> torch.optim.Optimizer:
    groups = _param_groups(model, config)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr)
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)


def lr_factor(step: int, config: TrainConfig) -> float:
    """Linear warm-up from ``warmup_start`` to 1, then poly decay ``(1 - t) ** power`` to 0 at ``iters``."""
    if step < config.warmup_iters:
        return config.warmup_start + (1 - config.warmup_start) * step / config.warmup_iters
    t = min(step, config.iters) / config.iters
    return (1 - t) ** config.poly_power


class _ForwardAll(nn.Module):
    """Makes ``forward`` return FoR-Net's full output, so DDP's hooks see the call. A peer model without a
    selector (torchvision's, for comparisons) gives its logits with no importance and no masks."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> FornetOutput:
        if hasattr(self.model, "forward_all"):
            return self.model.forward_all(x)
        return FornetOutput(logits_of(self.model(x)), None, None)  # type: ignore[arg-type]


def _amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or config.amp == "off":
        return None
    if config.amp == "fp16":
        return torch.float16
    if config.amp == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


# ----------------------------------------------------------------------------------------- run directory


def prepare_run_dir(out: str | os.PathLike, config: TrainConfig, *, resume: bool, force: bool) -> Path:
    """Create/validate the run folder: refuse to mix two runs, check it is writable."""
    run = Path(out)
    try:
        run.mkdir(parents=True, exist_ok=True)
        probe = run / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"Cannot write to the output folder {run} ({exc.strerror}). Choose another --out.") from None
    existing = (run / "config.json").is_file() or (run / CHECKPOINT_DIR / LAST).is_file()
    if resume:
        if not (run / CHECKPOINT_DIR / LAST).is_file():
            stopped = " (it was stopped before its first checkpoint: start it again with --force)" if existing else ""
            raise ConfigError(f"Nothing to resume in {run}: {CHECKPOINT_DIR}/{LAST} does not exist{stopped}.")
    elif existing and not force:
        raise ConfigError(
            f"{run} already holds a training run. Pass --resume to continue it, --force to start over "
            "(its checkpoints and log are replaced), or choose another --out."
        )
    for leftover in (run / CHECKPOINT_DIR).glob(".*.tmp"):  # from a writer that was killed mid-write
        leftover.unlink(missing_ok=True)
    if force and not resume:
        for stale in (run / CHECKPOINT_DIR / LAST, run / CHECKPOINT_DIR / BEST, run / "log.jsonl", run / "best_metrics.json"):
            stale.unlink(missing_ok=True)
    return run


class JsonLog:
    """Append-only JSON lines; on resume, entries after the resumed iteration are dropped."""

    def __init__(self, path: Path, resume_from: int | None) -> None:
        self.path = path
        if resume_from is not None and path.is_file():
            kept = [line for line in path.read_text(errors="replace").splitlines() if _log_iter(line) <= resume_from]
            atomic_write_text(path, "".join(line + "\n" for line in kept))

    def write(self, entry: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")


def _log_iter(line: str) -> float:
    """A log line's iteration; a line cut short (full disk, crash) counts as after any resume point: dropped."""
    try:
        entry = json.loads(line)
        return float(entry.get("iter", 0)) if isinstance(entry, dict) else float("inf")
    except (json.JSONDecodeError, TypeError, ValueError):
        return float("inf")


_RESUME_KEYS = ("model", "optimizer", "scheduler", "scaler", "iteration", "rng", "config")


def _resume_state(path: Path) -> dict[str, Any]:
    """``checkpoints/last.pt`` with every entry a resume needs, else a WeightsError (never a KeyError)."""
    state = load_checkpoint(path)
    missing = [k for k in _RESUME_KEYS if k not in state]
    if missing:
        raise WeightsError(
            f"{path} is not a complete fornet training checkpoint (no {', '.join(missing)}), so the run cannot be "
            "resumed from it. Restore the file, or start the run again with --force."
        )
    return state


def _resume_part(path: Path, what: str, load: Callable[[], Any]) -> Any:
    """Run ``load``; a checkpoint whose content does not fit (edited, or from another version) is a WeightsError."""
    try:
        return load()
    except FornetError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
        detail = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise WeightsError(
            f"The {what} in {path} does not fit this run ({detail}); the run cannot be resumed from it. Restore "
            "the file, or start the run again with --force."
        ) from None


def _restore(state: dict[str, Any], model: nn.Module, optimizer: Any, scheduler: Any, scaler: Any) -> tuple:
    """Load a checkpoint into the run's objects; returns ``(iteration, best mIoU, history)``."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    _set_rng_state(state["rng"])
    return int(state["iteration"]), state.get("best_miou"), list(state.get("history", []))


# ----------------------------------------------------------------------------------------- RNG state


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------------------- the loop


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
        return _train(config, Path(out), info, resume=resume, force=force, emit=emit, stop_at=stop_at)
    finally:
        dist.cleanup()


def _train(config, out: Path, info: dist.DistInfo, *, resume, force, emit: Callback, stop_at) -> TrainResult:
    device = info.device
    peer = config.model in PEERS  # a torchvision model trained the same way, for comparisons
    if not peer:
        get_entry(config.model)  # an unknown model name fails before any folder is touched
    run = prepare_run_dir(out, config, resume=resume, force=force) if info.is_main else out
    dist.barrier()
    state = _resume_state(run / CHECKPOINT_DIR / LAST) if resume else None
    if state is not None:
        saved = _resume_part(run / CHECKPOINT_DIR / LAST, "config", lambda: TrainConfig.from_dict(state["config"]))
        if saved.to_dict() != config.to_dict():
            changed = sorted(k for k, v in saved.to_dict().items() if config.to_dict().get(k) != v)
            emit({"type": "note", "message": f"resuming with the run's saved config (ignoring changes to {', '.join(changed)})"})
        config = saved
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    np.random.seed(config.seed)
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False

    from ..data.labels import CLASS_NAMES, TRAIN_ID_TO_COLOR
    from ..data.transforms import TransformSettings, eval_transforms, train_transforms

    settings = TransformSettings(crop_size=config.crop, scale_range=config.scale_range)
    train_set, val_set = _open_datasets(config, info.is_main)
    sampler = EpochSampler(len(train_set), config.batch, info.world_size, info.rank, config.seed)
    if sampler.steps_per_epoch == 0:
        raise DataError(
            f"The training split has {len(train_set)} images, fewer than one batch "
            f"({config.batch} x {info.world_size} processes). Lower --batch or add images."
        )

    from ..weights.backbone import backbone_init

    if peer:
        if config.pretrained or config.topk_ratios is not None:
            raise ConfigError(f"{config.model} is a torchvision peer: it trains from scratch and has no Top-K ratios.")
        model = build_peer(config.model, config.num_classes)
        # torchvision's MobileNetV3 uses BatchNorm momentum 0.01 (for long ImageNet schedules): in a short run
        # its running statistics barely move and eval-mode accuracy collapses (measured: 1.3 % val mIoU after
        # 200 cpu-quick iterations, with a training loss lower than FoR-Net's). Train it like fornet's own
        # models, with PyTorch's default 0.1.
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.momentum = 0.1
        meta = None  # not a FoR-Net checkpoint: --weights cannot load it
    else:
        pretrained = backbone_init(config.pretrained, config.model) if state is None else None
        model = create_model(config.model, config.num_classes, pretrained_backbone=pretrained, topk_ratios=config.topk_ratios)
        cityscapes = config.num_classes == len(CLASS_NAMES)
        class_names = list(CLASS_NAMES) if cityscapes else [f"class_{i}" for i in range(config.num_classes)]
        palette = TRAIN_ID_TO_COLOR[: config.num_classes].tolist() if cityscapes else None
        meta = meta_for(model, class_names, palette, settings.mean, settings.std, extra={"training": _training_summary(config)})
    if config.sync_bn and info.enabled:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # type: ignore[assignment]
    channels_last = config.channels_last if config.channels_last is not None else device.type == "cuda"
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = _optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, config))
    amp_dtype = _amp_dtype(config, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    step_model: nn.Module = _ForwardAll(model)
    if info.enabled:
        unused = any(r == 0 for r in getattr(model, "topk_ratios", ()))  # switched-off branches get no gradient
        step_model = nn.parallel.DistributedDataParallel(
            step_model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=unused
        )
    loss_fn = FornetLoss(config.loss)

    start, best, history = 0, None, []
    if state is not None:
        start, best, history = _resume_part(
            run / CHECKPOINT_DIR / LAST, "training state", lambda: _restore(state, model, optimizer, scheduler, scaler)
        )
    log = JsonLog(run / "log.jsonl", start if resume else None) if info.is_main else None
    if info.is_main and not resume:
        atomic_write_text(
            run / "config.json",
            json.dumps({"fornet_version": __version__, "world_size": info.world_size, **config.to_dict()}, indent=2) + "\n",
        )

    data = SeededSamples(train_set, train_transforms(settings), config.seed)
    val_data = _ValSamples(val_set, eval_transforms(settings), config.val_max_images)

    def save(kind: str, it: int) -> Path:
        path = run / CHECKPOINT_DIR / kind
        if info.is_main:
            save_checkpoint(
                path,
                {
                    "model": model.state_dict(),
                    "meta": None if meta is None else meta.to_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "iteration": it,
                    "rng": _rng_state(),
                    "config": config.to_dict(),
                    "best_miou": best,
                    "history": history,
                    "fornet_version": __version__,
                },
            )
        return path

    emit({"type": "start", "iteration": start, "iters": config.iters, "run_dir": str(run), "device": str(device),
          "world_size": info.world_size, "train_images": len(train_set), "val_images": len(val_data)})
    step_model.train()
    it = start
    last_ckpt = run / CHECKPOINT_DIR / LAST
    end = config.iters if stop_at is None else min(config.iters, stop_at)
    batches = _batches(data, sampler, config, start, device)
    t_log, n_log = time.perf_counter(), 0
    sums = {"loss": 0.0, "ce": 0.0, "dice": 0.0, "selector": 0.0}
    while it < end:
        images, labels = next(batches)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            out = step_model(images)
        terms = loss_fn(out.logits.float(), labels, out.importance)
        if not torch.isfinite(terms.total):
            good = load_checkpoint(last_ckpt)["iteration"] if last_ckpt.is_file() else None
            where = f"{last_ckpt} (iteration {good})" if good is not None else "none was written yet"
            raise TrainingError(
                f"The loss became {terms.total.item()} at iteration {it + 1} (ce {terms.ce.item():.4g}, dice "
                f"{terms.dice.item():.4g}, selector {terms.selector.item():.4g}). Training stopped; the last good "
                f"checkpoint is {where}. Lower --lr, set --grad-clip, or use --amp off."
            )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(terms.total).backward()
        if config.grad_clip > 0:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        it += 1
        n_log += 1
        for key, value in zip(sums, terms):
            sums[key] += float(value.detach())
        if it % config.log_every == 0 or it == end:
            elapsed = time.perf_counter() - t_log
            entry = {
                "iter": it,
                **{k: round(v / n_log, 5) for k, v in sums.items()},
                "lr": optimizer.param_groups[0]["lr"],
                "it_s": round(n_log / elapsed, 3),
                "img_s": round(n_log * config.batch * info.world_size / elapsed, 3),
                "time": time.time(),
            }
            if log is not None:
                log.write(entry)
            emit({"type": "step", **entry, "iters": config.iters})
            t_log, n_log = time.perf_counter(), 0
            sums = dict.fromkeys(sums, 0.0)
        if it % config.val_every == 0 or it == config.iters:
            dist.broadcast_buffers(model)  # every rank validates with rank 0's BatchNorm statistics
            scores = validate(model, val_data, device, info)
            step_model.train()
            miou = scores["miou"]
            history.append({"iter": it, **scores})
            if log is not None:
                log.write({"iter": it, "val": scores})
            is_best = best is None or (miou is not None and miou > best)
            if is_best and miou is not None:
                best = miou
                save(BEST, it)
                if info.is_main:
                    atomic_write_text(run / "best_metrics.json", json.dumps({"iter": it, **scores}, indent=2) + "\n")
            emit({"type": "val", "iter": it, "best": best, **scores})
        if it % config.ckpt_every == 0 or it == end:
            dist.broadcast_buffers(model)
            save(LAST, it)
            emit({"type": "checkpoint", "iter": it, "path": str(last_ckpt)})
    dist.broadcast_buffers(model)  # the returned model equals the saved one on every rank
    dist.barrier()
    emit({"type": "end", "iter": it, "best_miou": best, "run_dir": str(run)})
    return TrainResult(run, it, best, last_ckpt, history, model.eval())


def _batches(data: SeededSamples, sampler: EpochSampler, config: TrainConfig, start: int, device: torch.device):
    """Endless batches from iteration ``start`` on; each epoch gets a fresh loader (workers restart)."""
    epoch, skip = divmod(start, sampler.steps_per_epoch)
    while True:
        sampler.set_position(epoch, skip)
        loader = DataLoader(
            data,
            batch_size=config.batch,
            sampler=sampler,
            num_workers=config.workers,
            pin_memory=device.type == "cuda",
            drop_last=True,
            persistent_workers=False,
        )
        try:
            for images, labels in loader:
                yield images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        except FornetError as exc:  # a bad file read in a loader worker: its message, not its traceback
            raise from_loader_worker(exc) from None
        epoch, skip = epoch + 1, 0


class _ValSamples(Dataset):
    def __init__(self, dataset: Dataset, transform: Callable, limit: int | None) -> None:
        self.dataset, self.transform = dataset, transform
        self.n = len(dataset) if limit is None else min(limit, len(dataset))  # type: ignore[arg-type]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.transform(self.dataset[index])


def validate(model: nn.Module, val_data: Dataset, device: torch.device, info: dist.DistInfo) -> dict[str, Any]:
    """mIoU and hard-region scores on the validation split; ranks evaluate disjoint shards and sum counts."""
    from ..evaluation.evaluate import evaluate_model

    indices = list(range(info.rank, len(val_data), info.world_size))  # type: ignore[arg-type]
    gather = dist.all_gather_object if info.enabled else None
    result = evaluate_model(model, torch.utils.data.Subset(val_data, indices), gather=gather)
    return val_summary(result)


def val_summary(result: Any) -> dict[str, Any]:
    """The numbers a training log keeps from an evaluation."""
    scores, hard = result.scores, result.hard
    out: dict[str, Any] = {"miou": _num(scores.miou), "pixel_acc": _num(scores.pixel_accuracy)}
    if hard is not None:
        out["boundary_iou"] = _num(hard.boundary_miou)
        out["thin_miou"] = _num(hard.thin_miou)
    return out


def _num(v: Any) -> float | None:
    """A score for the training log: 5 decimals, None when undefined."""
    v = none_if_nan(v)
    return None if v is None else round(v, 5)


def _training_summary(config: TrainConfig) -> dict[str, Any]:
    keep = ("recipe", "data", "crop", "scale_range", "batch", "iters", "optimizer", "lr", "head_lr_mult",
            "weight_decay", "warmup_iters", "poly_power", "pretrained", "seed")
    return {k: getattr(config, k) for k in keep}
