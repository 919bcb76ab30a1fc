"""``fornet demo``: the whole tool on an embedded default, end to end, in about ten minutes on 2 CPU cores.

Generate a synthetic street-scene set, train the mobile variant with the cpu-quick recipe (on CUDA a bigger
set and budget), evaluate it (official and hard-region scores), predict the validation images, draw the
show-hardness gallery, export to ONNX and verify it, and write ``report.html`` linking everything.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from .data.synth import default_synth_root, ensure_synth_dataset
from .errors import ConfigError
from .extras import ONNX_PACKAGES, require_all
from .fsutil import atomic_write_text
from .training.config import TrainConfig, recipe
from .viz.report import render_demo_report

Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoConfig:
    out: Path = Path("runs/demo")
    minutes: float = 7.0  # training budget; the other steps add about a minute on 2 CPU cores
    device: str = "auto"
    seed: int = 0
    force: bool = False
    train_config: TrainConfig | None = None  # an exact training config (quick checks, tests): no budget fitting
    offer_default: bool = True  # make the trained model the default weights when none is set

    def __post_init__(self) -> None:
        if not 0.2 <= self.minutes <= 600:
            raise ConfigError(f"--minutes must be between 0.2 and 600; got {self.minutes}.")


@dataclass
class DemoReport:
    out: Path
    train: dict[str, Any]
    scores: dict[str, Any]
    hardness: dict[str, Any]
    export: dict[str, Any]
    predict: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)  # pictures of a few validation images
    classes: dict[str, Any] = field(default_factory=dict)  # names and palette
    default_weights: dict[str, Any] = field(default_factory=dict)  # what the demo did about the default weights

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out), "train": self.train, "scores": self.scores, "hardness": self.hardness,
            "export": self.export, "predict": self.predict, "seconds": self.seconds, "samples": self.samples,
            "classes": self.classes, "default_weights": self.default_weights,
        }


def demo_train_config(config: DemoConfig, cuda: bool) -> TrainConfig:
    """The cpu-quick recipe; on CUDA a larger generated set at a larger size (the budget does the rest)."""
    base = replace(recipe("cpu-quick"), seed=config.seed, device=config.device)
    if cuda:
        base = replace(base, synth_train=400, synth_val=50, synth_size=(512, 1024), crop=(512, 512), batch=16,
                       workers=4, amp="auto")
    return base


def step_seconds(train_config: TrainConfig, root: Path, device: torch.device, steps: int = 3) -> float:
    """Seconds per training step of this config on this machine (a short warm-up, then ``steps`` steps)."""
    from .data.cityscapes import CityscapesDataset
    from .data.transforms import TransformSettings, train_transforms
    from .model import create_model
    from .training.losses import FornetLoss

    settings = TransformSettings(crop_size=train_config.crop, scale_range=train_config.scale_range)
    data = CityscapesDataset(root, "train", transform=train_transforms(settings))
    samples = [data[i % len(data)] for i in range(train_config.batch)]
    x = torch.stack([s["image"] for s in samples]).to(device)
    y = torch.stack([s["mask"] for s in samples]).long().to(device)
    torch.manual_seed(train_config.seed)
    model = create_model(train_config.model, train_config.num_classes).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = FornetLoss(train_config.loss)

    def step() -> None:
        out = model.forward_all(x)
        opt.zero_grad(set_to_none=True)
        loss_fn(out.logits, y, out.importance).total.backward()
        opt.step()

    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


@contextmanager
def _timed(seconds: dict[str, float], key: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    seconds[key] = time.perf_counter() - start


def run_demo(config: DemoConfig, say: Say = lambda message: None, train_callback: Callable | None = None) -> DemoReport:
    """Generate data, train, evaluate, predict, show hardness and export into ``config.out``; see the module."""
    from .distributed import setup

    # The last step exports to ONNX and verifies it in onnxruntime: say so now, not after minutes of training.
    require_all(ONNX_PACKAGES, "fornet demo (its last step exports the model to ONNX and verifies it)")
    out = Path(config.out)
    if out.exists() and any(out.iterdir()) and not config.force:
        raise ConfigError(f"{out} is not empty. Pass --force to replace the demo there, or choose another --out.")
    out.mkdir(parents=True, exist_ok=True)
    device = setup(config.device).device
    tc = config.train_config or demo_train_config(config, device.type == "cuda")
    seconds: dict[str, float] = {}
    with _timed(seconds, "data"):
        say(f"1/6 data: {tc.synth_train} + {tc.synth_val} synthetic street scenes at {tc.synth_size[0]}x{tc.synth_size[1]}")
        root = ensure_synth_dataset(default_synth_root(tc.synth_train, tc.synth_val, tc.synth_size, tc.seed),
                                    tc.synth_train, tc.synth_val, tc.synth_size, tc.seed)
    with _timed(seconds, "train"):
        if config.train_config is not None:
            tc, per_step = config.train_config, float("nan")
        else:
            tc, per_step = _fit_budget(tc, root, device, config.minutes)
        say(f"2/6 train: {tc.model} for {tc.iters} iterations ({per_step:.2f} s/step measured, budget {config.minutes:g} min)"
            if config.train_config is None else f"2/6 train: {tc.model} for {tc.iters} iterations")
        result = _train(tc, out / "train", train_callback)
    loaded = _load(out / "train", device)
    with _timed(seconds, "evaluate"):
        say("3/6 evaluate: official Cityscapes scores and hard-region scores on the validation split")
        evaluation = _evaluate(loaded, root, out / "metrics.json")
        samples = demo_samples(loaded, root, out)
    val_images = root / "leftImg8bit" / "val"
    with _timed(seconds, "predict"):
        say("4/6 predict: colour masks, overlays and labelId files for the validation images")
        predicted = _predict(loaded, val_images, out / "predictions")
    with _timed(seconds, "show_hardness"):
        say("5/6 show-hardness: where the model focuses, and whether that is where it errs")
        hardness = _show_hardness(loaded, val_images, out / "hardness")
    with _timed(seconds, "export"):
        say("6/6 export: ONNX, verified against PyTorch in onnxruntime")
        exported = _export(loaded, out, tc.synth_size)
    report = DemoReport(
        out=out,
        train={"model": tc.model, "iterations": result.iteration, "best_val_miou": result.best_miou,
               "history": result.history, "seconds_per_step": None if per_step != per_step else round(per_step, 3),
               "device": str(device), "data": str(root), "iters": tc.iters, "log": _log(out / "train")},
        scores=_headline(evaluation), hardness=hardness, export=exported, predict=predicted,
        seconds={k: round(v, 1) for k, v in seconds.items()}, samples=samples,
        classes={"names": loaded.meta.class_names, "palette": loaded.meta.palette},
        default_weights=offer_default(out / "train") if config.offer_default else {},
    )
    atomic_write_text(out / "report.json", json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    atomic_write_text(out / "report.html", render_demo_report(report.to_dict()))
    return report


def _fit_budget(tc: TrainConfig, root: Path, device: torch.device, minutes: float) -> tuple[TrainConfig, float]:
    """The config with as many iterations as fit the budget on this machine, and the measured s/step."""
    per_step = step_seconds(tc, root, device)
    # ~10 % of the budget for data loading and validation (measured: a step in the loop costs ~15 % more
    # than in this probe, validation four times costs ~3 %); a multiple of 4 so the last validation is the end.
    iters = max(52, int(minutes * 60 * 0.88 / per_step) // 4 * 4)
    tc = replace(tc, iters=iters, val_every=max(1, iters // 4), ckpt_every=max(1, iters // 10),
                 warmup_iters=min(tc.warmup_iters, iters // 10))
    return tc, per_step


def _train(tc: TrainConfig, run: Path, callback: Callable | None) -> Any:
    from .training.loop import train

    return train(tc, run, force=True, callback=callback)


def _load(run: Path, device: torch.device) -> Any:
    from .weights.resolve import load_weights

    return load_weights(run, device=device)


def _evaluate(loaded: Any, root: Path, target: Path) -> dict[str, Any]:
    from .data.cityscapes import CityscapesDataset
    from .data.transforms import eval_transforms
    from .evaluation.evaluate import evaluate_model
    from .inference.predictor import InferenceConfig

    val = CityscapesDataset(root, "val", transform=eval_transforms())
    scores = evaluate_model(loaded.model, val, InferenceConfig()).to_dict()
    atomic_write_text(target, json.dumps(scores, indent=2, allow_nan=False) + "\n")
    return scores


def _predict(loaded: Any, images: Path, out: Path) -> dict[str, Any]:
    from .inference.predict import PredictConfig, predict_images
    from .inference.predictor import InferenceConfig, Predictor

    config = PredictConfig(formats=("color", "overlay", "labelid"), overwrite=True)
    return predict_images(Predictor(loaded.model, InferenceConfig()), loaded.meta, [images], out, config).to_dict()


def _show_hardness(loaded: Any, images: Path, out: Path) -> dict[str, Any]:
    from .hardness.show import HardnessConfig, show_hardness

    return show_hardness(loaded, [images], out, HardnessConfig()).to_dict()["summary"]


def _export(loaded: Any, out: Path, size: tuple[int, int]) -> dict[str, Any]:
    from .export.exporter import ExportOptions, export_model

    options = ExportOptions(height=size[0], width=size[1], overwrite=True)
    return export_model(loaded.model.cpu(), loaded.meta, out / "model.onnx", options, source=str(out / "train")).to_dict()


def _log(run: Path) -> list[dict[str, Any]]:
    """The run's log.jsonl entries (the report draws the training curve from them)."""
    entries = []
    for line in (run / "log.jsonl").read_text(errors="replace").splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return entries


def demo_samples(loaded: Any, root: Path, out: Path, count: int = 3) -> list[dict[str, Any]]:
    """Pictures of the first ``count`` validation images for the report: image, prediction, ground truth and
    the importance map with the largest Top-K region (files under ``out/report_images``)."""
    from .data.cityscapes import CityscapesDataset
    from .data.normalize import normalize
    from .inference.predictor import InferenceConfig, Predictor
    from .viz.samples import SampleView, write_panels

    val = CityscapesDataset(root, "val")
    predictor = Predictor(loaded.model, InferenceConfig())
    rows = []
    for i in range(min(count, len(val))):
        sample = val[i]
        image = sample["image"].permute(1, 2, 0).numpy()
        with torch.no_grad():
            output = predictor.fornet_outputs(normalize(image, loaded.meta.mean, loaded.meta.std))
        view = SampleView(
            sample["name"], image, output.logits[0].argmax(0).cpu().numpy(), sample["mask"].numpy(),
            torch.sigmoid(output.importance[0, 0].float()).cpu().numpy(), output.masks[0, -1].cpu().numpy() > 0.5,
        )
        rows.append({"name": sample["name"], "panels": write_panels(view, out / "report_images", "report_images",
                                                                    loaded.meta.palette)})
    return rows


def offer_default(run: Path) -> dict[str, Any]:
    """Make the demo's model the default weights when nothing sets one (no prompt: it may run unattended)."""
    from .weights.defaults import find_default, store_default

    current = find_default()
    if current is not None:
        return {"set": False, "current": current.to_dict(), "this_model": str(run.resolve())}
    stored, settings = store_default(str(run))
    return {"set": True, "ref": stored, "settings": str(settings)}


def _headline(scores: dict[str, Any]) -> dict[str, Any]:
    hard = scores.get("hard_regions") or {}
    return {
        "miou": scores.get("miou"),
        "pixel_accuracy": scores.get("pixel_accuracy"),
        "miiou": scores.get("miiou"),
        "boundary_miou": hard.get("boundary_miou"),
        "thin_miou": hard.get("thin_miou"),
        "class_iou": scores.get("class_iou"),
    }
