"""`fornet train`: the training loop with a Rich progress bar; works under torchrun."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..training.config import RECIPES, recipe
from ..training.loop import train as run_training
from ..training.losses import LossConfig
from .console import err, print_json
from .params import parse_size


def _size(value: str | None) -> tuple[int, int] | None:
    return None if value is None else parse_size(value)


def train(
    recipe_name: Annotated[str, typer.Option("--recipe", help=f"Start from a recipe: {', '.join(RECIPES)}.")] = "cpu-quick",
    data: Annotated[str | None, typer.Option(help="cityscapes or synth (a generated street-scene set).")] = None,
    root: Annotated[Path | None, typer.Option(help="Dataset folder in Cityscapes layout (default: $CITYSCAPES_DATASET for cityscapes, a generated set for synth).")] = None,
    model: Annotated[str | None, typer.Option(help="Model variant (see `fornet models`).")] = None,
    crop: Annotated[str | None, typer.Option(help="Training crop HxW (or one number for a square).")] = None,
    batch: Annotated[int | None, typer.Option(min=1, help="Images per step and process.")] = None,
    iters: Annotated[int | None, typer.Option(min=1, help="Training iterations.")] = None,
    lr: Annotated[float | None, typer.Option(help="Base learning rate (backbone); the head uses lr x head-lr-mult.")] = None,
    optimizer: Annotated[str | None, typer.Option(help="adamw (paper) or sgd.")] = None,
    weight_decay: Annotated[float | None, typer.Option(help="Weight decay (not applied to norms and biases).")] = None,
    warmup: Annotated[int | None, typer.Option(help="Linear warm-up iterations.")] = None,
    grad_clip: Annotated[float | None, typer.Option(help="Clip the gradient norm (0 = off).")] = None,
    pretrained: Annotated[str | None, typer.Option(help="Backbone init: a registry name or a .safetensors file (default: the variant's ImageNet weights for the paper recipe).")] = None,
    no_pretrained: Annotated[bool, typer.Option("--no-pretrained", help="Train from scratch.")] = False,
    topk: Annotated[str | None, typer.Option(help="Top-K ratios, e.g. 0.1,0.2,0.3,0.4 (0 = branches off, 1 = dense).")] = None,
    selector_weight: Annotated[float | None, typer.Option(help="Weight of the selector loss (0 = off).")] = None,
    dice_weight: Annotated[float | None, typer.Option(help="Weight of the Dice loss.")] = None,
    ohem: Annotated[bool, typer.Option("--ohem", help="OHEM cross-entropy (ours; not in the paper).")] = False,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    amp: Annotated[str | None, typer.Option(help="auto, off, bf16 or fp16 (CUDA only).")] = None,
    workers: Annotated[int | None, typer.Option(min=0, help="Data-loading worker processes.")] = None,
    sync_bn: Annotated[bool, typer.Option("--sync-bn", help="SyncBatchNorm across GPUs (torchrun).")] = False,
    val_every: Annotated[int | None, typer.Option(min=1, help="Validate every N iterations.")] = None,
    ckpt_every: Annotated[int | None, typer.Option(min=1, help="Write checkpoints/last.pt every N iterations.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (data order, augmentation, init).")] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (default runs/<model>).")] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue the run in this folder from its last checkpoint, with its saved config.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Start over in a folder that holds a run.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the final result as JSON on stdout.")] = False,
) -> None:
    """Train a FoR-Net variant (single process, or many GPUs with torchrun)."""
    base = recipe(recipe_name)
    loss = LossConfig(
        ce_weight=base.loss.ce_weight,
        dice_weight=base.loss.dice_weight if dice_weight is None else dice_weight,
        selector_weight=base.loss.selector_weight if selector_weight is None else selector_weight,
        ohem=ohem or base.loss.ohem,
    )
    pre: bool | str | None = False if no_pretrained else pretrained
    config = base.with_overrides(
        data=data, root=str(root) if root else None, model=model, crop=_size(crop), batch=batch, iters=iters, lr=lr,
        optimizer=optimizer, weight_decay=weight_decay, warmup_iters=warmup, grad_clip=grad_clip, pretrained=pre,
        topk_ratios=tuple(float(v) for v in topk.split(",")) if topk else None, device=device, amp=amp,
        workers=workers, sync_bn=sync_bn or None, val_every=val_every, ckpt_every=ckpt_every, seed=seed, loss=loss,
    )
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
