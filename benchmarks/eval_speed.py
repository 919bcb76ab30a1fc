"""Evaluation speed: `fornet eval --predictions` next to the official cityscapesscripts evaluator.

Both evaluate the same files in one process, in interleaved rounds (so load from other processes on a
shared machine hits them alike): a generated set of full-size (1024 x 2048) Cityscapes-like frames with
instances, and the real fixtures when present. The official evaluator runs with instance scores on
(``evalInstLevelScore=True``), as ``fornet eval`` does. The PNG decode time of the same files (three per
image: prediction, labelIds, instanceIds) is the floor no evaluator can go below, single-threaded and
with fornet's thread pool. Report ratios, not absolute times.

    python benchmarks/eval_speed.py --images 16 --rounds 3
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from fornet_cli.data.io import write_png
from fornet_cli.data.label_png import read_label_png
from fornet_cli.data.prediction_files import find_ground_truth, match_predictions
from fornet_cli.devices import default_workers
from fornet_cli.evaluation.evaluate import evaluate_predictions

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("FORNET_FIXTURES", ROOT.parent / "shared" / "fixtures")) / "cityscapes-eval"


# --------------------------------------------------------------------------------------------------------
# A Cityscapes-like frame: sky, buildings and trees over a road with sidewalks, poles and signs, void
# at the border and the ego vehicle, and about `n_instances` cars, people, riders and bicycles.
# --------------------------------------------------------------------------------------------------------


def _ellipse(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    y0, y1 = max(0, int(cy - ry)), min(h, int(cy + ry) + 1)
    x0, x1 = max(0, int(cx - rx)), min(w, int(cx + rx) + 1)
    mask = np.zeros((h, w), dtype=bool)
    yy, xx = np.ogrid[y0:y1, x0:x1]
    mask[y0:y1, x0:x1] = ((yy - cy) / max(ry, 1)) ** 2 + ((xx - cx) / max(rx, 1)) ** 2 <= 1
    return mask


def frame(
    rng: np.random.Generator, h: int = 1024, w: int = 2048, n_instances: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    labels = np.full((h, w), 23, dtype=np.uint8)  # sky
    horizon = int(h * rng.uniform(0.4, 0.5))
    x = 0
    while x < w:  # buildings, trees, walls and fences along the street
        bw = int(rng.integers(80, 400))
        top = int(rng.integers(int(h * 0.03), horizon - 20))
        labels[top:horizon, x : x + bw] = rng.choice([11, 11, 21, 21, 12, 13])
        x += bw
    labels[horizon:] = 7  # road
    yy, xx = np.mgrid[horizon:h, 0:w]
    slope = (yy - horizon) / (h - horizon)
    labels[horizon:][xx < slope * w * 0.3] = 8  # sidewalks widening towards the camera
    labels[horizon:][xx > w - slope * w * 0.25] = 8
    labels[horizon:][(xx < slope * w * 0.05) & (yy > horizon + 40)] = 22  # terrain
    for _ in range(int(rng.integers(4, 9))):  # poles with a sign or a light
        px, pw = int(rng.integers(0, w - 12)), int(rng.integers(5, 12))
        top = int(rng.integers(int(h * 0.1), horizon - 40))
        labels[top : horizon + int(rng.integers(20, 120)), px : px + pw] = 17
        labels[top : top + int(rng.integers(15, 40)), px - 10 : px + pw + 10] = rng.choice([19, 20])
    labels[_ellipse(h, w, h * 1.02, w / 2, h * 0.12, w * 0.55)] = 1  # ego vehicle
    labels[:, :6] = labels[:, -6:] = 3  # out of roi
    labels[horizon - 10 : horizon + 5, int(w * 0.6) : int(w * 0.7)] = 4  # static
    inst = labels.astype(np.uint16)
    counts: dict[int, int] = {}
    for _ in range(n_instances):
        cls = int(rng.choice([26, 26, 26, 24, 24, 24, 25, 33, 27, 28]))
        cy = float(rng.uniform(horizon, h * 0.85))
        depth = (cy - horizon) / (h - horizon) + 0.15  # nearer = lower = bigger
        if cls in (24, 25):
            ry, rx = 60 * depth * 2.5, 18 * depth * 2.5
        elif cls == 33:
            ry, rx = 35 * depth * 2.5, 40 * depth * 2.5
        else:
            ry, rx = 45 * depth * 3, 90 * depth * 3
        mask = _ellipse(h, w, cy - ry * 0.6, float(rng.uniform(0, w)), ry, rx)
        labels[mask] = cls
        k = counts.get(cls, 0)
        counts[cls] = k + 1
        inst[mask] = cls * 1000 + k
    return labels, inst


def prediction(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    """A good but imperfect prediction: borders off by a few pixels, some confused blobs, no void ids."""
    pred = np.roll(labels, shift=(int(rng.integers(-3, 4)), int(rng.integers(-3, 4))), axis=(0, 1)).copy()
    pred[pred == 1] = 26  # the ego vehicle's hood looks like a car
    pred[np.isin(pred, [3, 4])] = 11
    h, w = pred.shape
    for _ in range(12):
        cy, cx = float(rng.uniform(0, h)), float(rng.uniform(0, w))
        pred[_ellipse(h, w, cy, cx, float(rng.uniform(10, 80)), float(rng.uniform(10, 120)))] = rng.choice(
            [7, 8, 11, 12, 13, 17, 21, 22, 24, 26]
        )
    return pred


def write_set(folder: Path, n: int, seed: int, pred_writer: str = "fornet") -> tuple[Path, Path]:
    """Ground truth saved by Pillow (as Cityscapes' scripts save it); predictions as ``fornet predict --format
    labelid`` writes them (``pred_writer="fornet"``: ``write_png``) or by Pillow at its default level."""
    rng = np.random.default_rng(seed)
    gt_root, pred_dir = folder / "cityscapes", folder / "predictions"
    for i in range(n):
        city = ("frankfurt", "lindau", "munster")[i % 3]
        key = f"{city}_{i:06d}_{19 + i:06d}"
        gt_dir = gt_root / "gtFine" / "val" / city
        gt_dir.mkdir(parents=True, exist_ok=True)
        pred_dir.mkdir(parents=True, exist_ok=True)
        labels, inst = frame(rng)
        Image.fromarray(labels).save(gt_dir / f"{key}_gtFine_labelIds.png")
        Image.fromarray(inst).save(gt_dir / f"{key}_gtFine_instanceIds.png")
        pred = prediction(rng, labels)
        if pred_writer == "fornet":
            write_png(pred_dir / f"{key}_leftImg8bit.png", pred)
        else:
            Image.fromarray(pred).save(pred_dir / f"{key}_leftImg8bit.png")
    return gt_root, pred_dir


# --------------------------------------------------------------------------------------------------------
# The contenders
# --------------------------------------------------------------------------------------------------------


def official(pred_dir: Path, gt_root: Path, out: Path) -> Callable[[], float]:
    np.in1d = np.isin  # NumPy 2.4 removed in1d; cityscapesscripts 2.3.0 still calls it
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as ev

    pairs = match_predictions(pred_dir, find_ground_truth(gt_root, "val"))
    preds, gts = [str(p.prediction) for p in pairs], [str(p.label_ids) for p in pairs]

    def run() -> float:
        args = copy.copy(ev.args)
        args.evalInstLevelScore, args.quiet, args.JSONOutput = True, True, False
        args.exportFile = str(out / "official.json")
        return ev.evaluateImgLists(preds, gts, args)["averageScoreClasses"]

    return run


def decode(pred_dir: Path, gt_root: Path, workers: int) -> Callable[[], float]:
    pairs = match_predictions(pred_dir, find_ground_truth(gt_root, "val"))
    files = [f for p in pairs for f in (p.prediction, p.label_ids, p.instance_ids)]

    def run() -> float:
        if workers == 1:
            return float(sum(read_label_png(f).shape[0] for f in files))
        with ThreadPoolExecutor(workers) as pool:
            return float(sum(t.shape[0] for t in pool.map(read_label_png, files)))

    return run


def fornet(pred_dir: Path, gt_root: Path, hard: bool, workers: int | None) -> Callable[[], float]:
    kwargs = {} if hard else {"hard": None}
    return lambda: evaluate_predictions(pred_dir, gt_root, "val", workers=workers, **kwargs).scores.miou


def bench(
    name: str, pred_dir: Path, gt_root: Path, rounds: int, workers: int, tmp: Path
) -> list[tuple[str, float, float]]:
    n = len(find_ground_truth(gt_root, "val"))
    contenders = {
        "official evaluateImgLists (instance scores on)": official(pred_dir, gt_root, tmp),
        "fornet eval, official scores only (--no-hard)": fornet(pred_dir, gt_root, False, workers),
        "fornet eval, default (+ hard-region scores)": fornet(pred_dir, gt_root, True, workers),
        "fornet eval --no-hard, 1 worker": fornet(pred_dir, gt_root, False, 1),
        f"PNG decode floor, {workers} threads": decode(pred_dir, gt_root, workers),
        "PNG decode floor, 1 thread": decode(pred_dir, gt_root, 1),
    }
    times: dict[str, list[float]] = {k: [] for k in contenders}
    results: dict[str, float] = {}
    for run in contenders.values():  # warm-up (imports, caches)
        run()
    for _ in range(rounds):
        for key, run in contenders.items():
            start = time.perf_counter()
            results[key] = run()
            times[key].append(time.perf_counter() - start)
    miou = {k: v for k, v in results.items() if not k.startswith("PNG")}
    assert max(miou.values()) - min(miou.values()) < 1e-9, f"evaluators disagree: {miou}"
    base = statistics.median(times["official evaluateImgLists (instance scores on)"])
    rows = []
    value = next(iter(miou.values()))
    print(f"\n### {name}: {n} images, median of {rounds} rounds (mIoU {value:.4f} from every evaluator)\n")
    print("| what | median s | ms / image | official / this |")
    print("| --- | --- | --- | --- |")
    for key, ts in times.items():
        med = statistics.median(ts)
        rows.append((key, med, base / med))
        print(f"| {key} | {med:.3f} | {1000 * med / n:.1f} | {base / med:.2f}x |")
    return rows


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def _cpu_name() -> str:
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def main() -> None:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=16, help="generated 1024x2048 frames")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=default_workers())
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pred-writer", choices=("fornet", "pillow"), default="fornet",
                    help="who writes the generated predictions: fornet predict's writer, or Pillow (level 6)")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, {_cpu_name()}; Python {platform.python_version()}; workers {args.workers}")
    tmp = Path(tempfile.mkdtemp(prefix="fornet-eval-bench-"))
    try:
        start = time.perf_counter()
        gt_root, pred_dir = write_set(tmp / "generated", args.images, args.seed, args.pred_writer)
        print(f"generated {args.images} frames in {time.perf_counter() - start:.1f} s")
        print(f"load average before: {_load()}")
        bench(f"Generated 1024x2048 frames, predictions written by {args.pred_writer}", pred_dir, gt_root, args.rounds, args.workers, tmp)
        if FIXTURES.is_dir():
            pred = FIXTURES / "predictions" / "hrnet_ocr_w48"
            bench("Real fixtures (HRNet-OCR predictions)", pred, FIXTURES, max(args.rounds, 5), args.workers, tmp)
        print(f"\nload average after: {_load()} (other processes compete for the {os.cpu_count()} cores)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
