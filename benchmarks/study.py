"""A controlled study: does FoR-Net's hard-region focus help? (documented in docs/STUDY.md)

Same generated data, same recipe, same budget, same seeds for every row:

  a  fornet_mbv3 as defined (Top-K ratios 0.1/0.2/0.3/0.4, the selector learns the auxiliary errors)
  b  the same with Top-K ratios 0 (branches off)
  c  the same with Top-K ratios 1 (dense branches: every position, no selection)
  d  the same with the paper's selector target (ground-truth boundary band, BCE)
  e  torchvision lraspp_mobilenet_v3_large, trained the same way (CE + Dice)

Each run trains from scratch with the cpu-quick recipe for --iters iterations and is scored on the
validation split at its last iteration (not its best, so no row is picked after the fact). For FoR-Net rows
the selector's region is scored too: at each Top-K ratio, the share of the validation errors inside it,
next to the area-matched predicted-boundary band, the logit-gap rule and the grid ceiling. Latency is
measured once per row at --latency-size, all rows interleaved in one process. Runs already in --out are
reused, so an interrupted study continues where it stopped (a run cut short starts again).

    python benchmarks/study.py --jobs 2 --threads 1            # 5 rows x 3 seeds, about an hour on 2 CPU cores
    python benchmarks/study.py --rows a,e --iters 800 --jobs 2 --threads 1 --out runs/study800
    python benchmarks/study.py --seeds 0,1,2,3,4 --iters 2000 --device cuda --train 400 --size 512x1024
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import torch

from fornet_cli.benchmark.runner import BenchmarkConfig
from fornet_cli.data.synth import ensure_synth_dataset
from fornet_cli.fsutil import atomic_write_text
from fornet_cli.training.config import TrainConfig, recipe
from fornet_cli.training.loop import train
from fornet_cli.training.losses import LossConfig

ROWS = {
    "a": ("FoR-Net (mbv3), Top-K 0.1-0.4", {}),
    "b": ("same, Top-K 0 (branches off)", {"topk_ratios": (0.0, 0.0, 0.0, 0.0)}),
    "c": ("same, Top-K 1 (dense branches)", {"topk_ratios": (1.0, 1.0, 1.0, 1.0)}),
    "d": ("same, the paper's selector target (boundary band, BCE)",
          {"loss": LossConfig(selector_target="boundary", selector_fit="bce")}),
    "e": ("torchvision LRASPP MobileNetV3-L", {"model": "lraspp_mobilenet_v3_large"}),
}


def _size(text: str) -> tuple[int, int]:
    h, w = text.lower().split("x")
    return int(h), int(w)


def base_config(root: Path, iters: int, crop: tuple[int, int], batch: int, device: str) -> TrainConfig:
    """The cpu-quick recipe on the study's data, validated once at the last iteration."""
    return replace(
        recipe("cpu-quick"), data="synth", root=str(root), iters=iters, val_every=iters, ckpt_every=iters,
        crop=crop, batch=batch, device=device, warmup_iters=min(30, iters // 10),
    )


def row_config(base: TrainConfig, key: str, seed: int) -> TrainConfig:
    return replace(base, seed=seed, **ROWS[key][1])


def run_one(config: TrainConfig, out: Path) -> dict:
    done = out / "study_result.json"
    if done.is_file():
        return json.loads(done.read_text())
    t0 = time.perf_counter()
    result = train(config, out, force=True)
    final = result.history[-1]
    record = {"iter": final["iter"], "miou": final["miou"], "boundary_iou": final.get("boundary_iou"),
              "thin_miou": final.get("thin_miou"), "seconds": round(time.perf_counter() - t0, 1)}
    atomic_write_text(done, json.dumps(record) + "\n")
    return record


def train_ce(run: Path, last: int = 50) -> float | None:
    """Mean training cross-entropy over the last ``last`` logged iterations (from log.jsonl)."""
    lines = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines() if x.strip()]
    steps = [e for e in lines if "ce" in e]
    if not steps:
        return None
    top = steps[-1]["iter"]
    return statistics.mean(e["ce"] for e in steps if e["iter"] > top - last)


def job(args: tuple[TrainConfig, Path, int]) -> dict:
    """One run in a worker process with ``threads`` threads: its scores, training CE and selector recall."""
    config, out, threads = args
    torch.set_num_threads(threads)
    record = run_one(config, out)
    record["train_ce"] = train_ce(out)
    record["selector"] = selector_recall(out, Path(config.root))  # type: ignore[arg-type]
    return record


def selector_recall(run: Path, root: Path, split: str = "val") -> list[dict] | None:
    """Per Top-K ratio, the share of the validation errors inside the trained selector's region, next to the
    area-matched predicted-boundary band, the logit-gap rule and the grid ceiling (None for peers).

    Stored in the run folder (``selector.json``), so it is computed once per run.
    """
    done = run / "selector.json"
    if done.is_file():
        return json.loads(done.read_text())
    from fornet_cli.hardness.summary import summarize
    from fornet_cli.weights.resolve import load_weights

    try:
        loaded = load_weights(run)
    except Exception:  # a peer's checkpoint: no selector to measure
        return None
    model = loaded.model.eval()
    images, _ = hardness_of_split(model, root, split)
    rows = summarize(images, model.topk_ratios).to_dict()["selector"]
    keep = ("ratio", "coverage", "error_recall", "gap_error_recall", "band_cells_error_recall", "ceiling_error_recall")
    result = [{**{k: r[k] for k in keep}, "band_error_recall": (r["band_area_matched"] or {}).get("error_recall")}
              for r in rows]
    atomic_write_text(done, json.dumps(result) + "\n")
    return result


def hardness_of_split(model: torch.nn.Module, root: Path, split: str = "val") -> tuple[list, torch.Tensor]:
    """A FoR-Net model over a Cityscapes-layout split: show-hardness's numbers for each image (``ImageHardness``,
    selector, band, logit-gap and ceiling regions) and the 34 x 34 label-id confusion matrix fornet eval counts."""
    from fornet_cli.data.cityscapes import CityscapesDataset
    from fornet_cli.data.transforms import eval_transforms
    from fornet_cli.evaluation.counting import confusion_matrix, to_label_ids
    from fornet_cli.hardness.analysis import analyze_image
    from fornet_cli.hardness.regions import logit_gap

    conf = torch.zeros((34, 34), dtype=torch.int64)
    images = []
    for sample in CityscapesDataset(root, split, transform=eval_transforms()):
        with torch.inference_mode():
            out = model.forward_all(sample["image"][None])
        logits = out.logits[0]
        pred, gt = logits.argmax(0), to_label_ids(torch.as_tensor(sample["mask"]))
        conf += confusion_matrix(to_label_ids(pred), gt)
        im, _ = analyze_image(pred, out.importance[0, 0], out.masks[0] > 0.5, model.topk_ratios, gt,
                              gap=logit_gap(logits))
        images.append(im)
    return images, conf


def latency(base: TrainConfig, keys: list[str], size: tuple[int, int], runs: int) -> dict[str, float]:
    """Median latency of each row's model (random weights), rows interleaved in one process."""
    import fornet_cli
    from fornet_cli.benchmark.runner import time_models
    from fornet_cli.model.peers import build_peer

    models = {}
    for key in keys:
        cfg = row_config(base, key, 0)
        if cfg.model in fornet_cli.list_models():
            models[key] = fornet_cli.create_model(cfg.model, topk_ratios=cfg.topk_ratios)
        else:
            models[key] = build_peer(cfg.model)
    return time_models(models, BenchmarkConfig(size=size, runs=runs))


def _stats(values: list[float | None]) -> tuple[float, float]:
    xs = [v for v in values if v is not None]
    if not xs:
        return float("nan"), float("nan")
    return statistics.mean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="a,b,c,d,e")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--train", type=int, default=100, help="generated training images")
    ap.add_argument("--val", type=int, default=20, help="generated validation images")
    ap.add_argument("--size", default="256x512", help="generated image size")
    ap.add_argument("--crop", default="256x256")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--jobs", type=int, default=1, help="runs in parallel (each with --threads threads)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--latency-size", default="1024x2048")
    ap.add_argument("--latency-runs", type=int, default=5, help="0: no latency measurement")
    ap.add_argument("--out", default="runs/study")
    args = ap.parse_args()
    keys, seeds = args.rows.split(","), [int(s) for s in args.seeds.split(",")]
    out = Path(args.out)
    root = ensure_synth_dataset(out / "data", args.train, args.val, _size(args.size), 0)  # one set for every run
    base = base_config(root, args.iters, _size(args.crop), args.batch, args.device)
    t0 = time.perf_counter()
    # seeds outermost: a partial study still has every row
    todo = [(row_config(base, k, s), out / f"{k}-seed{s}", args.threads) for s in seeds for k in keys]
    with ProcessPoolExecutor(args.jobs) as pool:
        records = list(pool.map(job, todo))
    results: dict[str, list[dict]] = {k: [] for k in keys}
    for (config, path, _), record in zip(todo, records):
        results[path.name.rsplit("-seed", 1)[0]].append({"seed": config.seed, **record})
    lat = latency(base, keys, _size(args.latency_size), args.latency_runs) if args.latency_runs else {}
    summary = {
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}",
        "settings": vars(args),
        "train_seconds": round(time.perf_counter() - t0, 1),
        "rows": {k: {"label": ROWS[k][0], "runs": results[k], "latency_s": lat.get(k)} for k in keys},
    }
    atomic_write_text(out / "study.json", json.dumps(summary, indent=2) + "\n")
    print(f"\n{len(seeds)} seeds ({args.seeds}), {args.iters} iterations each, {args.train}+{args.val} generated "
          f"images at {args.size}; mean ± standard deviation over seeds; paired differences from row a.\n")
    print(table(summary))


def table(summary: dict) -> str:
    """Markdown: each row's mean ± sd, its paired difference from row a per seed, latency."""
    rows = summary["rows"]
    ref = {r["seed"]: r for r in rows.get("a", {}).get("runs", [])}
    lat_a = rows.get("a", {}).get("latency_s")
    lines = ["| row | model | mIoU (%) | vs a, per seed (points) | boundary mIoU (%) | thin-class mIoU (%) | "
             "train CE | latency (s) |", "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: |"]
    for key, row in rows.items():
        runs = row["runs"]
        cells = []
        for metric in ("miou", "boundary_iou", "thin_miou"):
            m, s = _stats([r[metric] for r in runs])
            cells.append(f"{100 * m:.1f} ± {100 * s:.1f}")
        diffs = ", ".join(f"{100 * (r['miou'] - ref[r['seed']]['miou']):+.1f}" for r in runs if r["seed"] in ref)
        ce, _ = _stats([r.get("train_ce") for r in runs])
        lat = row.get("latency_s")
        lat_cell = "-" if lat is None else f"{lat:.3f}" + (f" ({lat / lat_a:.2f}x a)" if lat_a else "")
        lines.append(f"| {key} | {row['label']} | {cells[0]} | {diffs if key != 'a' else '-'} | {cells[1]} | "
                     f"{cells[2]} | {ce:.3f} | {lat_cell} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
