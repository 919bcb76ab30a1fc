"""Morphology of the hard-region scores: fornet's hand-written filters against scipy.ndimage and OpenCV.

Times every operation of ``fornet_cli/evaluation/morphology.py``, ``band_curve`` of
``fornet_cli/hardness/analysis.py`` and ``erode`` of ``fornet_cli/viz/raster.py`` on generated 1024 x 2048
Cityscapes-like frames (``eval_speed.frame``), in one process and interleaved rounds, and checks that every
contender gives the same array as the hand-written code. The hand-written code is loaded from the git
revision that still has it (``--baseline``), so the comparison stays reproducible after its removal.
Report ratios, not absolute times.

    python benchmarks/morphology_speed.py --images 4 --rounds 7
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import scipy.ndimage as ndi
import torch

from fornet_cli.devices import default_workers
from fornet_cli.evaluation import morphology
from fornet_cli.evaluation.counting import evaluated_mask, to_label_ids
from fornet_cli.evaluation.hard_regions import HardRegionMetrics
from fornet_cli.hardness.analysis import CURVE_WIDTHS, band_curve
from fornet_cli.viz import raster

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_speed import _cpu_name, frame, prediction  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# A commit from before OpenCV: edges by sparse tables (torch), the band curve by PackedMask dilations with
# popcounts, the figures' erosion in numpy.
BASELINE = "f241345"
WIDTHS = (3, 6, 12, 24)  # fornet eval's default trimap widths at 1024 x 2048
SQUARE3 = np.ones((3, 3), np.uint8)


# --------------------------------------------------------------------------------------------------------
# The hand-written code, from git
# --------------------------------------------------------------------------------------------------------


def _module(name: str, source: str, origin: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__package__ = name.rpartition(".")[0]
    sys.modules[name] = module  # dataclasses look their module up there
    exec(compile(source, origin, "exec"), module.__dict__)
    return module


def _git_module(rev: str, path: str, name: str) -> types.ModuleType:
    source = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True)
    return _module(name, source.stdout, f"{rev}:{path}")


@contextmanager
def _as_module(name: str, module: types.ModuleType) -> Iterator[None]:
    """``module`` stands in for ``name`` while another old module imports it."""
    saved = sys.modules.get(name)
    sys.modules[name] = module
    try:
        yield
    finally:
        if saved is None:
            del sys.modules[name]
        else:
            sys.modules[name] = saved


def load_baseline(rev: str) -> dict[str, types.ModuleType]:
    """The hand-written morphology and, importing it, the band curve and the hard-region histogram."""
    old = {"morphology": _git_module(rev, "fornet_cli/evaluation/morphology.py", "fornet_cli.evaluation._old_morph")}
    with _as_module("fornet_cli.evaluation.morphology", old["morphology"]):
        old["analysis"] = _git_module(rev, "fornet_cli/hardness/analysis.py", "fornet_cli.hardness._old_analysis")
        old["hard_regions"] = _git_module(
            rev, "fornet_cli/evaluation/hard_regions.py", "fornet_cli.evaluation._old_hard_regions"
        )
    old["raster"] = _git_module(rev, "fornet_cli/viz/raster.py", "fornet_cli.viz._old_raster")
    return old


def with_cv2_dilations() -> types.ModuleType:
    """The current hard_regions.py on fornet's morphology with ``cv2.dilate`` instead of PackedMask for the
    bands: the alternative to the hand-written dilation, in fornet eval's counting."""
    morph = types.ModuleType("fornet_cli.evaluation._cv2_morphology")
    morph.__dict__.update(morphology.__dict__)
    morph.boundary_band = lambda labels, width, valid=None: torch.from_numpy(
        dilate_cv2(morphology.edges(labels, valid).numpy(), width - 1))
    morph.distance_levels = lambda labels, widths, valid=None: torch.from_numpy(
        levels_cv2_dilate(labels.numpy(), tuple(widths), None if valid is None else valid.numpy()))
    path = ROOT / "fornet_cli" / "evaluation" / "hard_regions.py"
    with _as_module("fornet_cli.evaluation.morphology", morph):
        return _module("fornet_cli.evaluation._cv2_hard_regions", path.read_text(), str(path))


# --------------------------------------------------------------------------------------------------------
# Library contenders (numpy in, numpy out)
# --------------------------------------------------------------------------------------------------------


def _neutral(labels: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    if valid is None:
        return labels, labels
    high = labels * valid
    return high, high | ((~valid).view(np.uint8) * np.uint8(255))


def edges_cv2(labels: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    high, low = _neutral(labels, valid)
    return cv2.dilate(high, SQUARE3) > cv2.erode(low, SQUARE3)


def edges_scipy(labels: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    high, low = _neutral(labels, valid)
    return ndi.maximum_filter(high, size=3, mode="nearest") > ndi.minimum_filter(low, size=3, mode="nearest")


def dilate_cv2(mask: np.ndarray, r: int) -> np.ndarray:
    return cv2.dilate(mask.view(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)).view(bool) if r > 0 else mask


def dilate_scipy_max(mask: np.ndarray, r: int) -> np.ndarray:
    return ndi.maximum_filter(mask.view(np.uint8), size=2 * r + 1, mode="constant", cval=0).view(bool)


def dilate_scipy_binary(mask: np.ndarray, r: int) -> np.ndarray:
    return ndi.binary_dilation(mask, np.ones((2 * r + 1, 2 * r + 1), bool))


def distance_cv2(edge: np.ndarray) -> np.ndarray:
    """Chebyshev distance to the nearest edge pixel (float32, FLT_MAX without edges)."""
    return cv2.distanceTransform((~edge).view(np.uint8), cv2.DIST_C, 3)


def distance_scipy(edge: np.ndarray) -> np.ndarray:
    d = ndi.distance_transform_cdt(~edge, metric="chessboard")
    d[d < 0] = np.iinfo(d.dtype).max  # -1: no edge pixel at all
    return d


def band_from_distance(distance: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray, int], np.ndarray]:
    return lambda mask, r: distance(mask) <= r


def levels_from_distance(distance: Callable[[np.ndarray], np.ndarray]) -> Callable:
    def run(labels: np.ndarray, widths: tuple[int, ...], valid: np.ndarray) -> np.ndarray:
        d = distance(edges_cv2(labels, valid))
        level = np.zeros(labels.shape, np.uint8)
        for w in widths:  # outside band_w <=> distance > w - 1
            level += d >= w
        return level

    return run


def levels_cv2_dilate(labels: np.ndarray, widths: tuple[int, ...], valid: np.ndarray) -> np.ndarray:
    band = edges_cv2(labels, valid)
    level = np.full(labels.shape, len(widths), np.uint8)
    previous = 1
    for w in widths:
        band = dilate_cv2(band, w - previous)
        previous = w
        level -= band.view(np.uint8)
    return level


def curve_from_distance(distance: Callable[[np.ndarray], np.ndarray]) -> Callable:
    def run(pred: np.ndarray, valid: np.ndarray, wrong: np.ndarray, widths: tuple[int, ...]) -> np.ndarray:
        d = distance(edges_cv2(pred, None))
        top = widths[-1]
        dist = np.minimum(d, top).astype(np.int32)  # beyond the widest band: one bin
        kind = valid.view(np.uint8) + (wrong & valid).view(np.uint8)  # 0 void, 1 right, 2 wrong
        counts = np.bincount((dist * 3 + kind).ravel(), minlength=3 * (top + 1)).reshape(top + 1, 3)
        inside = np.cumsum(counts, axis=0)  # inside[k]: distance <= k
        at = np.asarray(widths) - 1
        return np.stack([inside[at, 1] + inside[at, 2], inside[at, 2]])

    return run


def curve_cv2_dilate(pred: np.ndarray, valid: np.ndarray, wrong: np.ndarray, widths: tuple[int, ...]) -> np.ndarray:
    band = edges_cv2(pred, None)
    wrong = wrong & valid
    out = np.zeros((2, len(widths)), np.int64)
    previous = 1
    for j, w in enumerate(widths):
        band = dilate_cv2(band, w - previous)
        previous = w
        out[0, j] = np.count_nonzero(band & valid)
        out[1, j] = np.count_nonzero(band & wrong)
    return out


def erode_cv2(mask: np.ndarray, r: int) -> np.ndarray:
    # the default border value of cv2.erode is the type's maximum: outside counts as inside the mask
    return cv2.erode(mask.view(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)).view(bool)


def erode_scipy(mask: np.ndarray, r: int) -> np.ndarray:
    return ndi.minimum_filter(mask.view(np.uint8), size=2 * r + 1, mode="constant", cval=1).view(bool)


# --------------------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------------------


def race(title: str, contenders: dict[str, Callable[[int], np.ndarray]], n: int, rounds: int) -> None:
    """``contenders`` map a name to a function of the image index; the first is the hand-written code."""
    names = list(contenders)
    reference = [np.asarray(contenders[names[0]](i)) for i in range(n)]
    for name in names[1:]:
        for i in range(n):
            out = np.asarray(contenders[name](i))
            assert np.array_equal(out, reference[i]), f"{title}: {name} differs from the hand-written code"
    times: dict[str, list[float]] = {k: [] for k in names}
    for _ in range(rounds):
        for name in names:
            start = time.perf_counter()
            for i in range(n):
                contenders[name](i)
            times[name].append((time.perf_counter() - start) / n)
    base = statistics.median(times[names[0]])
    print(f"\n#### {title}\n\n| contender | ms / image | hand-written / this |\n| --- | --- | --- |")
    for name in names:
        med = statistics.median(times[name])
        print(f"| {name} | {1000 * med:.2f} | {base / med:.2f}x |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=4, help="generated 1024x2048 frames")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--baseline", default=BASELINE, help="git revision with the hand-written code")
    ap.add_argument("--cv2-threads", type=int, default=None, help="cv2.setNumThreads (default: OpenCV's choice)")
    args = ap.parse_args()
    if args.cv2_threads is not None:
        cv2.setNumThreads(args.cv2_threads)
    torch.set_num_threads(1)  # as fornet eval's workers run
    print(f"machine: {os.cpu_count()} cores, {_cpu_name()}; torch threads 1, OpenCV threads {cv2.getNumThreads()}; "
          f"opencv {cv2.__version__}, scipy {sys.modules['scipy'].__version__}; baseline {args.baseline}")
    old = load_baseline(args.baseline)
    old_morph, old_analysis, old_raster = old["morphology"], old["analysis"], old["raster"]
    rng = np.random.default_rng(0)
    gts, preds = [], []
    for _ in range(args.images):
        labels, _inst = frame(rng)
        gts.append(labels)
        preds.append(prediction(rng, labels))
    gt_t = [torch.from_numpy(g) for g in gts]
    valid_t = [evaluated_mask(g) for g in gt_t]
    valid = [v.numpy() for v in valid_t]
    pred_train = [to_train(p) for p in preds]
    wrong_t = [v & (to_label_ids(p, "prediction") != g) for v, p, g in zip(valid_t, pred_train, gt_t)]
    n, rounds = args.images, args.rounds
    edge_gt = [old_morph.edges(g, v).numpy() for g, v in zip(gt_t, valid_t)]
    print(f"\n### {n} generated 1024x2048 frames, median of {rounds} rounds")

    race("edges (3 x 3 max > min, void neutral)", {
        "hand-written sparse table (torch)": lambda i: old_morph.edges(gt_t[i], valid_t[i]),
        "cv2.dilate / cv2.erode 3x3": lambda i: edges_cv2(gts[i], valid[i]),
        "scipy maximum_filter / minimum_filter": lambda i: edges_scipy(gts[i], valid[i]),
        "current fornet": lambda i: morphology.edges(gt_t[i], valid_t[i]),
    }, n, rounds)
    for r in (2, 11, 23, 100):
        race(f"dilation of the edges by r = {r} (boundary_band of width {r + 1})", {
            "hand-written PackedMask": lambda i, r=r: old_morph.dilate(torch.from_numpy(edge_gt[i]), r),
            "hand-written sparse table (torch, any device)": lambda i, r=r: old_morph.dilate_elementwise(
                torch.from_numpy(edge_gt[i]), r),
            "cv2.dilate, (2r+1)^2 rectangle": lambda i, r=r: dilate_cv2(edge_gt[i], r),
            "scipy maximum_filter": lambda i, r=r: dilate_scipy_max(edge_gt[i], r),
            "cv2.distanceTransform DIST_C <= r": lambda i, r=r: band_from_distance(distance_cv2)(edge_gt[i], r),
            "scipy distance_transform_cdt chessboard <= r": lambda i, r=r: band_from_distance(distance_scipy)(
                edge_gt[i], r),
            **({"scipy binary_dilation": lambda i, r=r: dilate_scipy_binary(edge_gt[i], r)} if r <= 2 else {}),
            "current fornet": lambda i, r=r: morphology.dilate(torch.from_numpy(edge_gt[i]), r),
        }, n, rounds)
    race(f"distance_levels, widths {WIDTHS} (edges included)", {
        "hand-written (PackedMask, incremental)": lambda i: old_morph.distance_levels(gt_t[i], WIDTHS, valid_t[i]),
        "cv2.dilate, incremental": lambda i: levels_cv2_dilate(gts[i], WIDTHS, valid[i]),
        "cv2.distanceTransform DIST_C": lambda i: levels_from_distance(distance_cv2)(gts[i], WIDTHS, valid[i]),
        "scipy distance_transform_cdt chessboard": lambda i: levels_from_distance(distance_scipy)(
            gts[i], WIDTHS, valid[i]),
        "current fornet": lambda i: morphology.distance_levels(gt_t[i], WIDTHS, valid_t[i]),
    }, n, rounds)
    pred_ids = [to_label_ids(p, "prediction").to(torch.uint8) for p in pred_train]
    workers = default_workers()

    def histograms(metrics: object) -> Callable[[int], np.ndarray]:
        """All images' hard-region histograms on ``workers`` threads (as fornet eval counts), per image."""

        def run(i: int) -> np.ndarray:
            if i:  # the whole set runs once per round, as one batch
                return np.zeros(0)
            with ThreadPoolExecutor(workers) as pool:
                hists = pool.map(lambda j: metrics.histogram(pred_ids[j], gt_t[j]).numpy(), range(n))
                return np.stack(list(hists))

        return run

    race(f"HardRegionMetrics.histogram (fornet eval's hard-region counting), {workers} threads, whole set / n", {
        "hand-written morphology": histograms(old["hard_regions"].HardRegionMetrics()),
        "cv2 edges, cv2.dilate bands": histograms(with_cv2_dilations().HardRegionMetrics()),
        "current fornet": histograms(HardRegionMetrics()),
    }, n, rounds)
    widths = tuple(sorted({*CURVE_WIDTHS, 12}))

    def curve(fn: Callable, i: int) -> np.ndarray:
        c = fn(pred_train[i], valid_t[i], wrong_t[i], widths)
        return np.stack([c.valid_inside, c.errors_inside])

    pred_np = [p.numpy() for p in pred_train]
    race(f"band_curve, {len(widths)} widths 1..1024 (edges and counts included)", {
        "hand-written (PackedMask, incremental, popcount)": lambda i: curve(old_analysis.band_curve, i),
        "cv2.dilate, incremental, count_nonzero": lambda i: curve_cv2_dilate(
            pred_np[i], valid[i], wrong_t[i].numpy(), widths),
        "cv2.distanceTransform DIST_C + one bincount": lambda i: curve_from_distance(distance_cv2)(
            pred_np[i], valid[i], wrong_t[i].numpy(), widths),
        "scipy distance_transform_cdt + one bincount": lambda i: curve_from_distance(distance_scipy)(
            pred_np[i], valid[i], wrong_t[i].numpy(), widths),
        "current fornet": lambda i: curve(band_curve, i),
    }, n, rounds)
    panels = [raster.resize_labels(g, (480, 960)) == 26 for g in gts]  # a class mask at a figure's panel size
    fulls = [g == 26 for g in gts]
    for title, masks in (("480 x 960 panel", panels), ("1024 x 2048", fulls)):
        race(f"raster.erode, radius 2, car mask at {title}", {
            "hand-written (numpy, 9 shifted ANDs per step)": lambda i, m=masks: old_raster.erode(m[i], 2),
            "cv2.erode": lambda i, m=masks: erode_cv2(m[i], 2),
            "scipy minimum_filter": lambda i, m=masks: erode_scipy(m[i], 2),
            "current fornet": lambda i, m=masks: raster.erode(m[i], 2),
        }, n, rounds)


def to_train(labels: np.ndarray) -> torch.Tensor:
    """Label ids -> train ids (255 -> 0, as band_curve sees a prediction of train ids)."""
    from fornet_cli.data.labels import id_to_train_id

    t = id_to_train_id(labels)
    return torch.from_numpy(np.where(t == 255, 0, t).astype(np.uint8))


if __name__ == "__main__":
    main()
