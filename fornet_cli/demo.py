"""``fornet demo``: the whole tool on an embedded default, end to end, in about ten minutes on 2 CPU cores.

Generate a synthetic street-scene set, train the mobile variant with the cpu-quick recipe (on CUDA a bigger
set and budget), evaluate it (official and hard-region scores), predict the validation images, draw the
show-hardness gallery, export to ONNX and verify it, and write ``report.html`` linking everything.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from .data.synth import default_synth_root, ensure_synth_dataset
from .errors import ConfigError
from .fmt import pct
from .fsutil import atomic_write_text
from .training.config import TrainConfig, recipe

Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoConfig:
    out: Path = Path("runs/demo")
    minutes: float = 7.0  # training budget; the other steps add about a minute on 2 CPU cores
    device: str = "auto"
    seed: int = 0
    force: bool = False

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out), "train": self.train, "scores": self.scores, "hardness": self.hardness,
            "export": self.export, "predict": self.predict, "seconds": self.seconds,
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


def run_demo(config: DemoConfig, say: Say = lambda message: None, train_callback: Callable | None = None) -> DemoReport:
    from .distributed import setup
    from .evaluation.evaluate import evaluate_model
    from .export.exporter import ExportOptions, export_model
    from .hardness.show import HardnessConfig, show_hardness
    from .inference.predict import PredictConfig, predict_images
    from .inference.predictor import InferenceConfig, Predictor
    from .training.loop import train
    from .weights.resolve import load_weights

    out = Path(config.out)
    if out.exists() and any(out.iterdir()) and not config.force:
        raise ConfigError(f"{out} is not empty. Pass --force to replace the demo there, or choose another --out.")
    out.mkdir(parents=True, exist_ok=True)
    device = setup(config.device).device
    cuda = device.type == "cuda"
    tc = demo_train_config(config, cuda)
    seconds: dict[str, float] = {}

    t = time.perf_counter()
    say(f"1/6 data: {tc.synth_train} + {tc.synth_val} synthetic street scenes at {tc.synth_size[0]}x{tc.synth_size[1]}")
    root = ensure_synth_dataset(default_synth_root(tc.synth_train, tc.synth_val, tc.synth_size, tc.seed),
                                tc.synth_train, tc.synth_val, tc.synth_size, tc.seed)
    seconds["data"] = time.perf_counter() - t

    t = time.perf_counter()
    per_step = step_seconds(tc, root, device)
    # ~10 % of the budget for data loading and validation (measured: a step in the loop costs ~15 % more
    # than in this probe, validation four times costs ~3 %); a multiple of 4 so the last validation is the end.
    iters = max(52, int(config.minutes * 60 * 0.88 / per_step) // 4 * 4)
    tc = replace(tc, iters=iters, val_every=max(1, iters // 4), ckpt_every=max(1, iters // 10),
                 warmup_iters=min(tc.warmup_iters, iters // 10))
    say(f"2/6 train: {tc.model} for {iters} iterations ({per_step:.2f} s/step measured, budget {config.minutes:g} min)")
    result = train(tc, out / "train", force=True, callback=train_callback)
    seconds["train"] = time.perf_counter() - t

    t = time.perf_counter()
    say("3/6 evaluate: official Cityscapes scores and hard-region scores on the validation split")
    loaded = load_weights(out / "train", device=device)
    from .data.cityscapes import CityscapesDataset
    from .data.transforms import eval_transforms

    val = CityscapesDataset(root, "val", transform=eval_transforms())
    evaluation = evaluate_model(loaded.model, val, InferenceConfig())
    atomic_write_text(out / "metrics.json", json.dumps(evaluation.to_dict(), indent=2, allow_nan=False) + "\n")
    seconds["evaluate"] = time.perf_counter() - t

    t = time.perf_counter()
    say("4/6 predict: colour masks, overlays and labelId files for the validation images")
    val_images = root / "leftImg8bit" / "val"
    summary = predict_images(Predictor(loaded.model, InferenceConfig()), loaded.meta, [val_images], out / "predictions",
                             PredictConfig(formats=("color", "overlay", "labelid"), overwrite=True))
    seconds["predict"] = time.perf_counter() - t

    t = time.perf_counter()
    say("5/6 show-hardness: where the model focuses, and whether that is where it errs")
    hardness = show_hardness(loaded, [val_images], out / "hardness", HardnessConfig())
    seconds["show_hardness"] = time.perf_counter() - t

    t = time.perf_counter()
    say("6/6 export: ONNX, verified against PyTorch in onnxruntime")
    h, w = tc.synth_size
    exported = export_model(loaded.model.cpu(), loaded.meta, out / "model.onnx",
                            ExportOptions(height=h, width=w, overwrite=True), source=str(out / "train"))
    seconds["export"] = time.perf_counter() - t

    report = DemoReport(
        out=out,
        train={"model": tc.model, "iterations": result.iteration, "best_val_miou": result.best_miou,
               "history": result.history, "seconds_per_step": round(per_step, 3), "device": str(device),
               "data": str(root)},
        scores=_headline(evaluation.to_dict()),
        hardness=hardness.to_dict()["summary"],
        export=exported.to_dict(),
        predict=summary.to_dict(),
        seconds={k: round(v, 1) for k, v in seconds.items()},
    )
    atomic_write_text(out / "report.json", json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    atomic_write_text(out / "report.html", render_report(report))
    return report


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


def _pct(v: Any) -> str:
    return pct(v, missing="–")


def render_report(report: DemoReport) -> str:
    """A self-contained page (no scripts, no external files) linking the gallery, metrics and outputs."""
    s, tr = report.scores, report.train
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{_pct(v)}</td></tr>" for name, v in (s.get("class_iou") or {}).items()
    )
    curve = "".join(f"<tr><td>{h['iter']}</td><td>{_pct(h.get('miou'))}</td></tr>" for h in tr["history"])
    timing = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.1f} s</td></tr>" for k, v in report.seconds.items())
    verified = "verified" if report.export.get("verified") else "NOT verified"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fornet demo report</title>
<style>body{{font:15px/1.45 system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;margin:.5em 0 1.5em}}td,th{{border:1px solid #ccc;padding:.2em .6em;text-align:left}}
.big{{font-size:1.3em}}code{{background:#f4f4f4;padding:0 .3em}}</style></head><body>
<h1>fornet demo</h1>
<p class="big">{html.escape(tr['model'])} (our efficient FoR-Net variant), trained from scratch for {tr['iterations']}
iterations on generated street scenes ({html.escape(tr['device'])}): validation mIoU <b>{_pct(s.get('miou'))}</b>,
boundary mIoU {_pct(s.get('boundary_miou'))}, thin-class mIoU {_pct(s.get('thin_miou'))}.</p>
<p>These numbers are on fornet's synthetic data, not on Cityscapes.</p>
<ul>
<li><a href="hardness/index.html">show-hardness gallery</a>: where the model focuses, and whether that is where it errs</li>
<li><a href="metrics.json">metrics.json</a>: every official and hard-region score</li>
<li><a href="predictions/">predictions/</a>: colour masks, overlays, labelId files</li>
<li><a href="model.onnx">model.onnx</a> ({verified} in onnxruntime)</li>
<li><a href="train/">train/</a>: config.json, log.jsonl, checkpoints</li>
</ul>
<h2>Validation mIoU during training</h2><table><tr><th>iteration</th><th>mIoU (%)</th></tr>{curve}</table>
<h2>Class IoU (%)</h2><table>{rows}</table>
<h2>Time</h2><table>{timing}</table>
</body></html>
"""
