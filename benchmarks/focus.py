"""Focus inference's trade-off: mIoU, boundary mIoU and time per image for uniform scales and focus budgets.

Every setting runs on the same frames in the same process, interleaved (each frame runs every setting, in an
order rotated by one per frame) after an untimed warm-up that builds the runtime (ONNX export, the first
check against eager PyTorch). Time per image is the model's part (``Predictor.labels``: the passes, the
ranking, the pasting, the argmax), not decoding or writing. Agreement is the share of pixels whose class
equals the full-resolution (scale 1.0) prediction's.

    python benchmarks/focus.py --weights mbv3=runs/focus/mbv3,r18=runs/focus/r18 --root runs/focus/data \\
        --images 20 --out runs/focus/bench                       # the table and figure in docs/BENCHMARKS.md
    python benchmarks/focus.py ... --rankings importance,uncertainty,both --budgets 0.2   # which ranking
    python benchmarks/focus.py --latency fornet_r101 --images 3 ...  # time only (random weights) for r101

Writes ``results.json``, ``table.md`` and ``focus.png`` (mIoU against time) under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fornet_cli.data.cityscapes import CityscapesDataset
from fornet_cli.data.transforms import eval_transforms
from fornet_cli.evaluation.counting import image_statistics
from fornet_cli.evaluation.hard_regions import HardRegionMetrics
from fornet_cli.evaluation.metrics import SegmentationMetrics
from fornet_cli.evaluation.space import CITYSCAPES_SPACE
from fornet_cli.inference.predictor import InferenceConfig, Predictor
from fornet_cli.model import create_model
from fornet_cli.model.calibrate import calibrate_batchnorm
from fornet_cli.weights.resolve import load_weights


def settings(scales: list[float], budgets: list[float], rankings: list[str], runtime: str, tiles: list[str],
             merges: list[str] = ("paste",)) -> dict[str, InferenceConfig]:
    """``tiles``: ``TILE/HALO`` pairs in pixels; every combination of ranking, tile and merge gets a name."""
    out = {f"scale {s:g}": InferenceConfig(scales=(s,), runtime=runtime) for s in scales}
    for rank in rankings:
        for spec in tiles:
            tile, halo = (int(v) for v in spec.split("/"))
            for merge in merges:
                for b in budgets:
                    extra = [rank] * (len(rankings) > 1) + [spec] * (len(tiles) > 1) + [merge] * (len(merges) > 1)
                    name = " ".join([f"focus {b:g}", *extra])
                    out[name] = InferenceConfig(runtime=runtime, focus=b, focus_rank=rank, focus_tile=tile,
                                                focus_halo=halo, focus_merge=merge)
    return out


def run_model(model: torch.nn.Module, frames: list[dict], configs: dict[str, InferenceConfig],
              say: Any) -> dict[str, dict[str, Any]]:
    predictors = {name: Predictor(model, cfg) for name, cfg in configs.items()}
    for p in predictors.values():  # warm-up: builds and checks the runtime
        p.labels(frames[0]["image"][None])
    times: dict[str, list[float]] = {n: [] for n in configs}
    preds: dict[str, list[np.ndarray]] = {n: [] for n in configs}
    names = list(configs)
    for i, frame in enumerate(frames):
        order = names[i % len(names):] + names[: i % len(names)]
        for name in order:
            t0 = time.perf_counter()
            labels = predictors[name].labels(frame["image"][None])
            times[name].append(time.perf_counter() - t0)
            preds[name].append(labels[0].numpy())
        say(f"  frame {i + 1}/{len(frames)}")
    results = {}
    reference = preds.get("scale 1")
    for name in names:
        results[name] = {**score(preds[name], frames), "seconds": statistics.median(times[name]),
                         "seconds_mean": statistics.fmean(times[name])}
        if reference is not None:
            same = sum(int((p == r).sum()) for p, r in zip(preds[name], reference))
            results[name]["agreement"] = same / sum(r.size for r in reference)
    return results


def score(preds: list[np.ndarray], frames: list[dict]) -> dict[str, float]:
    space = CITYSCAPES_SPACE
    metrics, hard = SegmentationMetrics(space=space), HardRegionMetrics(space=space)
    for pred, frame in zip(preds, frames):
        gt_ids = space.from_train_ids(torch.as_tensor(frame["mask"]), "label")
        pred_ids = space.from_train_ids(torch.from_numpy(pred.astype(np.int64)), "prediction")
        conf = hard.update(pred_ids, gt_ids)
        metrics.add(image_statistics(pred_ids, gt_ids, None, name=frame["name"], confusion=conf, n=space.size))
    scores, hard_scores = metrics.compute(), hard.compute()
    return {"miou": scores.miou, "boundary_miou": hard_scores.boundary_miou, "thin_miou": hard_scores.thin_miou}


def latency_only(arch: str, size: tuple[int, int], budgets: list[float], scales: list[float], runtime: str,
                 images: int, tiles: list[str], merges: list[str]) -> dict[str, float]:
    model = create_model(arch, num_classes=19).eval()
    calibrate_batchnorm(model)
    x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0))
    configs = settings(scales, budgets, ["uncertainty"], runtime, tiles, merges)
    predictors = {n: Predictor(model, c) for n, c in configs.items()}
    times: dict[str, list[float]] = {n: [] for n in configs}
    for p in predictors.values():
        p.labels(x)
    names = list(configs)
    for i in range(images):
        for name in names[i % len(names):] + names[: i % len(names)]:
            t0 = time.perf_counter()
            predictors[name].labels(x)
            times[name].append(time.perf_counter() - t0)
    return {n: statistics.median(t) for n, t in times.items()}


def table(results: dict[str, dict[str, dict[str, Any]]], latency: dict[str, dict[str, float]]) -> str:
    lines = ["| model | setting | time / image (s) | vs scale 1 | mIoU (%) | boundary mIoU (%) | thin-class mIoU (%) | "
             "same class as scale 1 (%) |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for model, rows in results.items():
        full = rows.get("scale 1", {}).get("seconds")
        for name, r in rows.items():
            ratio = f"{r['seconds'] / full:.2f}x" if full else "-"
            agree = f"{100 * r['agreement']:.2f}" if "agreement" in r else "-"
            lines.append(f"| {model} | {name} | {r['seconds']:.3f} | {ratio} | {100 * r['miou']:.1f} | "
                         f"{100 * r['boundary_miou']:.1f} | {100 * r['thin_miou']:.1f} | {agree} |")
    for model, rows in latency.items():
        full = rows.get("scale 1")
        for name, seconds in rows.items():
            ratio = f"{seconds / full:.2f}x" if full else "-"
            lines.append(f"| {model} (time only) | {name} | {seconds:.3f} | {ratio} | - | - | - | - |")
    return "\n".join(lines) + "\n"


def plot(results: dict[str, dict[str, dict[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    for metric, ax in zip(("miou", "boundary_miou"), axes):
        for model, rows in results.items():
            # one line for uniform scales, one per focus variant (ranking, tiles, merge: the name after the budget)
            lines: dict[str, list[tuple[float, float, str]]] = {}
            for name, r in rows.items():
                kind, value, *variant = name.split(" ")
                key = "uniform scale" if kind == "scale" else " ".join(["focus", *variant])
                lines.setdefault(key, []).append((r["seconds"], 100 * r[metric], value))
            for key, pts in lines.items():
                pts.sort()
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o" if key == "uniform scale" else "s",
                        linestyle="--" if key == "uniform scale" else "-", label=f"{model}: {key}")
                for x, y, value in pts:
                    ax.annotate(value, (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
        ax.set_xlabel("time per image (s), 1024x2048, 2 CPU cores")
        ax.set_ylabel({"miou": "mIoU (%)", "boundary_miou": "boundary mIoU (%)"}[metric])
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("Focus inference against uniform downscaling (generated validation frames)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="", help="NAME=REF,... trained models to score")
    ap.add_argument("--root", type=Path, help="Cityscapes-layout data folder (its val split is scored)")
    ap.add_argument("--split", default="val")
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--scales", default="0.5,0.75,1.0")
    ap.add_argument("--budgets", default="0,0.1,0.2,0.3,0.4,1.0")
    ap.add_argument("--rankings", default="auto")
    ap.add_argument("--tiles", default="256/32", help="TILE/HALO,... in pixels")
    ap.add_argument("--merges", default="paste")
    ap.add_argument("--runtime", default="auto")
    ap.add_argument("--latency", default="", help="architectures timed with random weights (no scores)")
    ap.add_argument("--latency-size", default="1024x2048")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--replot", action="store_true", help="only redraw focus.png from --out's results.json")
    args = ap.parse_args()
    if args.replot:
        plot(json.loads((args.out / "results.json").read_text())["results"], args.out / "focus.png")
        return
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    scales = [float(s) for s in args.scales.split(",")]
    budgets = [float(b) for b in args.budgets.split(",")]
    rankings = args.rankings.split(",")
    tiles, merges = args.tiles.split(","), args.merges.split(",")
    configs = settings(scales, budgets, rankings, args.runtime, tiles, merges)
    results: dict[str, Any] = {}
    if args.weights:
        data = CityscapesDataset(args.root, args.split, eval_transforms())
        frames = [data[i] for i in range(min(args.images, len(data)))]
        frames = [{"image": torch.as_tensor(f["image"]), "mask": np.asarray(f["mask"]), "name": f["name"]} for f in frames]
        for item in args.weights.split(","):
            name, ref = item.split("=", 1)
            print(f"{name}: {ref}", flush=True)
            model = load_weights(ref).model.eval()
            results[name] = run_model(model, frames, configs, lambda m: print(m, flush=True))
    latency = {}
    for arch in [a for a in args.latency.split(",") if a]:
        h, w = (int(v) for v in args.latency_size.split("x"))
        print(f"{arch}: latency only", flush=True)
        latency[arch] = latency_only(arch, (h, w), [b for b in budgets if 0 < b < 1], scales, args.runtime,
                                     args.images, tiles, merges)
    record = {"results": results, "latency": latency, "args": {k: str(v) for k, v in vars(args).items()},
              "machine": f"{os.cpu_count()} CPUs, torch {torch.__version__}", "load": os.getloadavg()}
    (args.out / "results.json").write_text(json.dumps(record, indent=2) + "\n")
    text = table(results, latency)
    (args.out / "table.md").write_text(text)
    print(text)
    if results:
        plot(results, args.out / "focus.png")


if __name__ == "__main__":
    main()
