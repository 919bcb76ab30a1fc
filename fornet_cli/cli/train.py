"""`fornet train`: the training loop with a Rich progress bar; works under torchrun."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..training.config import DEFAULT_RECIPE, RECIPES, TrainConfig, config_from_file, recipe, with_settings
from ..training.loop import train as run_training
from ..training.selector import SELECTOR_LOSSES, SELECTOR_TARGETS
from .console import err, print_json
from .params import parse_ratios, parse_size

# TrainConfig fields ("loss.<name>": LossConfig fields) that only a --config file sets; every other field has
# an option below, and tests/cli/test_train_cli.py checks that each one reaches the resolved config.
CONFIG_FILE_ONLY = frozenset({
    "num_classes",  # fixed by the label set: Cityscapes' 19 train ids (the synthetic set too), or the classes file
    "warmup_start",  # the shape of the schedule (warm-up start factor, poly exponent): the usual values, ...
    "poly_power",  # ... tuned with --lr, --warmup and --iters instead
    "loss.ce_weight",  # the anchor term: --dice-weight and --selector-weight are relative to it
    "loss.ignore_index",  # 255, the ignore id of the label files
})


def _size(value: str | None, option: str) -> tuple[int, int] | None:
    return None if value is None else parse_size(value, option)


def _scale_range(value: str | None) -> tuple[float, float] | None:
    """``0.5,2.0`` -> ``(0.5, 2.0)``."""
    if value is None:
        return None
    try:
        low, high = (float(v) for v in value.replace(" ", "").split(","))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a range; write MIN,MAX, e.g. 0.5,2.0.", param_hint="--scale-range") from None
    if not 0 < low <= high:
        raise typer.BadParameter(f"{value!r}: need 0 < MIN <= MAX, e.g. 0.5,2.0.", param_hint="--scale-range")
    return low, high


def config_from_options(recipe_name: str | None, config_file: Path | None, options: Mapping[str, Any]) -> TrainConfig:
    """Recipe defaults < ``config_file`` < ``options``: field name (or ``loss.<name>``) -> value, None = not given.

    The base recipe is ``recipe_name`` when given, else the file's ``recipe`` when it names one, else cpu-quick.
    """
    base = config_from_file(config_file, recipe_name) if config_file else recipe(recipe_name or DEFAULT_RECIPE)
    given = {key: value for key, value in options.items() if value is not None}
    if recipe_name is not None:  # the command line names the recipe, whatever the file says
        given["recipe"] = recipe_name
    settings: dict[str, Any] = {key: value for key, value in given.items() if not key.startswith("loss.")}
    settings["loss"] = {key.removeprefix("loss."): value for key, value in given.items() if key.startswith("loss.")}
    return with_settings(base, settings, "the command-line options")


def train(
    config_file: Annotated[Path | None, typer.Option("--config", metavar="FILE", help="Settings from a YAML, TOML or JSON file (e.g. a run's config.json). Precedence: recipe < file < options.")] = None,
    recipe_name: Annotated[str | None, typer.Option("--recipe", help=f"Start from a recipe: {', '.join(RECIPES)} (default: the --config file's recipe, else {DEFAULT_RECIPE}).")] = None,
    data: Annotated[str | None, typer.Option(help="cityscapes, synth (a generated street-scene set) or folder (your own: ROOT/{train,val}/images|masks/ + classes.json).")] = None,
    root: Annotated[Path | None, typer.Option(help="Dataset folder (default: $CITYSCAPES_DATASET for cityscapes, a generated set for synth; needed for folder).")] = None,
    classes: Annotated[str | None, typer.Option(help="--data folder: a classes file (JSON/YAML) or 'cityscapes' (default: ROOT/classes.json or classes.yaml).")] = None,
    synth_train: Annotated[int | None, typer.Option(min=1, help="Generated training images (--data synth without --root).")] = None,
    synth_val: Annotated[int | None, typer.Option(min=1, help="Generated validation images (--data synth without --root).")] = None,
    synth_size: Annotated[str | None, typer.Option(help="Generated image size HxW (--data synth without --root).")] = None,
    val_split: Annotated[str | None, typer.Option(help="Validation split: gtFine/<split>.")] = None,
    val_max_images: Annotated[int | None, typer.Option(min=1, help="Validate on the first N images only (quick checks).")] = None,
    model: Annotated[str | None, typer.Option(help="Model variant (see `fornet models`).")] = None,
    crop: Annotated[str | None, typer.Option(help="Training crop HxW (or one number for a square).")] = None,
    scale_range: Annotated[str | None, typer.Option(metavar="MIN,MAX", help="Random rescaling range, e.g. 0.5,2.0.")] = None,
    batch: Annotated[int | None, typer.Option(min=1, help="Images per step and process.")] = None,
    iters: Annotated[int | None, typer.Option(min=1, help="Training iterations.")] = None,
    lr: Annotated[float | None, typer.Option(help="Base learning rate (backbone); the head uses lr x head-lr-mult.")] = None,
    head_lr_mult: Annotated[float | None, typer.Option(help="Learning-rate factor for everything outside the backbone.")] = None,
    optimizer: Annotated[str | None, typer.Option(help="adamw (paper) or sgd.")] = None,
    momentum: Annotated[float | None, typer.Option(help="SGD momentum (--optimizer sgd only).")] = None,
    weight_decay: Annotated[float | None, typer.Option(help="Weight decay (not applied to norms and biases).")] = None,
    warmup: Annotated[int | None, typer.Option(help="Linear warm-up iterations.")] = None,
    grad_clip: Annotated[float | None, typer.Option(help="Clip the gradient norm (0 = off).")] = None,
    pretrained: Annotated[str | None, typer.Option(help="Backbone init: a registry name or a .safetensors file (default: the variant's ImageNet weights for the paper recipe).")] = None,
    no_pretrained: Annotated[bool, typer.Option("--no-pretrained", help="Train from scratch.")] = False,
    topk: Annotated[str | None, typer.Option(metavar="R1,R2,...", help="Top-K ratios in [0, 1], one per branch, e.g. 0.1,0.2,0.3,0.4 (0 = branch off, 1 = dense).")] = None,
    selector_weight: Annotated[float | None, typer.Option(help="Weight of the selector loss (0 = off).")] = None,
    selector_target: Annotated[str | None, typer.Option(help=f"What the selector learns: {', '.join(SELECTOR_TARGETS)} (boundary: the paper's band; the others, ours: where the final or the auxiliary prediction errs).")] = None,
    selector_fit: Annotated[str | None, typer.Option(help=f"How the selector fits its target: {', '.join(SELECTOR_LOSSES)} (rank: put the error mass first).")] = None,
    aux_weight: Annotated[float | None, typer.Option(help="Weight of the auxiliary classifier's cross-entropy (variants with one).")] = None,
    dice_weight: Annotated[float | None, typer.Option(help="Weight of the Dice loss.")] = None,
    ohem: Annotated[bool | None, typer.Option("--ohem/--no-ohem", help="OHEM cross-entropy (ours; not in the paper).")] = None,
    ohem_thresh: Annotated[float | None, typer.Option(help="OHEM: keep pixels whose true-class probability is below this.")] = None,
    ohem_min_kept: Annotated[int | None, typer.Option(min=1, help="OHEM: but at least this many pixels per batch.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    amp: Annotated[str | None, typer.Option(help="auto, off, bf16 or fp16 (CUDA only).")] = None,
    channels_last: Annotated[bool | None, typer.Option("--channels-last/--no-channels-last", help="channels_last memory format (default: on CUDA only).")] = None,
    workers: Annotated[int | None, typer.Option(min=0, help="Data-loading worker processes.")] = None,
    sync_bn: Annotated[bool | None, typer.Option("--sync-bn/--no-sync-bn", help="SyncBatchNorm across GPUs (torchrun).")] = None,
    deterministic: Annotated[bool | None, typer.Option("--deterministic/--no-deterministic", help="Deterministic algorithms (slower).")] = None,
    log_every: Annotated[int | None, typer.Option(min=1, help="Log the loss every N iterations.")] = None,
    val_every: Annotated[int | None, typer.Option(min=1, help="Validate every N iterations.")] = None,
    ckpt_every: Annotated[int | None, typer.Option(min=1, help="Write checkpoints/last.pt every N iterations.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (data order, augmentation, init).")] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (default runs/<model>).")] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue the run in this folder from its last checkpoint, with its saved config.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Start over in a folder that holds a run.")] = False,
    print_config: Annotated[bool, typer.Option("--print-config", help="Print the resolved config as JSON and exit (no training).")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the final result as JSON on stdout.")] = False,
) -> None:
    """Train a FoR-Net variant (single process, or many GPUs with torchrun)."""
    config = config_from_options(recipe_name, config_file, {
        "data": data, "root": None if root is None else str(root), "classes": classes, "synth_train": synth_train, "synth_val": synth_val,
        "synth_size": _size(synth_size, "--synth-size"), "val_split": val_split, "val_max_images": val_max_images,
        "model": model, "crop": _size(crop, "--crop"), "scale_range": _scale_range(scale_range), "batch": batch,
        "iters": iters, "lr": lr, "head_lr_mult": head_lr_mult, "optimizer": optimizer, "momentum": momentum,
        "weight_decay": weight_decay, "warmup_iters": warmup, "grad_clip": grad_clip,
        "pretrained": False if no_pretrained else pretrained, "topk_ratios": parse_ratios(topk, "--topk"),
        "loss.selector_weight": selector_weight, "loss.selector_target": selector_target,
        "loss.selector_fit": selector_fit, "loss.aux_weight": aux_weight, "loss.dice_weight": dice_weight, "loss.ohem": ohem,
        "loss.ohem_thresh": ohem_thresh, "loss.ohem_min_kept": ohem_min_kept, "device": device, "amp": amp,
        "channels_last": channels_last, "workers": workers, "sync_bn": sync_bn, "deterministic": deterministic,
        "log_every": log_every, "val_every": val_every, "ckpt_every": ckpt_every, "seed": seed,
    })
    if print_config:
        print_json(config.to_dict())
        return
    run_dir = resume or out or Path("runs") / config.model
    with _ProgressView() as view:
        result = run_training(config, run_dir, resume=resume is not None, force=force, callback=view)
    summary = {"run_dir": str(result.run_dir), "iteration": result.iteration, "best_miou": result.best_miou,
               "last_checkpoint": str(result.last_checkpoint), "history": result.history}
    if json_out:
        print_json(summary)
    best = "n/a" if result.best_miou is None else f"{100 * result.best_miou:.2f}"
    err.print(f"[green]Done[/green]: {result.iteration} iterations, best val mIoU {best}. Run folder: {result.run_dir}")


class _ProgressView:
    """Renders training events: a progress bar with the loss terms, lr and speed; a line per validation."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=False,
        )
        self.task: Any = None

    def __enter__(self) -> _ProgressView:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.task is not None and err.is_terminal:  # the bar is only shown once training has started
            self.progress.stop()

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "start":
            err.print(
                f"Training on {event['device']} x{event['world_size']}: {event['train_images']} train / "
                f"{event['val_images']} val images -> {event['run_dir']}", highlight=False,
            )
            self.task = self.progress.add_task("train", total=event["iters"], completed=event["iteration"], stats="")
            if err.is_terminal:
                self.progress.start()
        elif kind == "step" and self.task is not None:
            stats = (f"loss {event['loss']:.3f} (ce {event['ce']:.3f} dice {event['dice']:.3f} sel {event['selector']:.3f})"
                     f" lr {event['lr']:.2e} {event['it_s']:.2f} it/s")
            self.progress.update(self.task, completed=event["iter"], stats=stats)
            if not err.is_terminal:  # logs to a file or a pipe: a plain line per logged step
                err.print(f"iter {event['iter']}/{event['iters']}: {stats}", highlight=False)
        elif kind == "val":
            miou = event.get("miou")
            line = f"iter {event['iter']}: val mIoU {100 * miou:.2f}" if miou is not None else f"iter {event['iter']}: val"
            extra = [f"{k} {100 * event[k]:.2f}" for k in ("boundary_iou", "thin_miou") if event.get(k) is not None]
            err.print(", ".join([line, *extra]), highlight=False)
        elif kind == "note":
            err.print(f"[yellow]note:[/yellow] {event['message']}", highlight=False)
